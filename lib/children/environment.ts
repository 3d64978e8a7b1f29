/** The environment a child process starts with (never the proxy's whole environment). */

/** Variables handed from the proxy's environment to every child (so `npx` and `uvx` work). */
export const CHILD_ENV_VARS = ["PATH", "HOME", "USER", "LANG", "LC_*", "TZ"] as const;

const LC_VARS = [
  "LC_ALL",
  "LC_CTYPE",
  "LC_NUMERIC",
  "LC_TIME",
  "LC_COLLATE",
  "LC_MONETARY",
  "LC_MESSAGES",
  "LC_PAPER",
  "LC_NAME",
  "LC_ADDRESS",
  "LC_TELEPHONE",
  "LC_MEASUREMENT",
  "LC_IDENTIFICATION",
];

/** The environment a child starts with: a few of the proxy's variables plus the server's own. */
export function childEnvironment(serverEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const names = CHILD_ENV_VARS.flatMap((name) => name === "LC_*" ? LC_VARS : [name]);
  for (const name of names) {
    try {
      const value = Deno.env.get(name);
      if (value !== undefined) env[name] = value;
    } catch {
      // Not permitted: the child simply does not get it.
    }
  }
  return { ...env, ...serverEnv };
}
