/**
 * The peers and the third-party stdio server, installed from npm at pinned versions into
 * `bench/.cache/` (git-ignored), never into the project's dependencies.
 */

export const BENCH = decodeURIComponent(new URL(".", import.meta.url).pathname).replace(/\/$/, "");
export const CACHE = `${BENCH}/.cache`;

export const PINNED: Record<string, string> = {
  "supergateway": "4.0.0",
  "mcp-proxy": "6.7.19",
  "@modelcontextprotocol/server-everything": "2026.8.31",
};

const MODULES = `${CACHE}/node_modules`;

/** Entry points, run with `node` directly (no npx start-up in the measurements). */
export const ENTRY = {
  supergateway: `${MODULES}/supergateway/dist/index.js`,
  mcpProxy: `${MODULES}/mcp-proxy/dist/bin/mcp-proxy.mjs`,
  everything: `${MODULES}/@modelcontextprotocol/server-everything/dist/index.js`,
};

function installedVersion(name: string): string | undefined {
  try {
    const pkg = JSON.parse(Deno.readTextFileSync(`${MODULES}/${name}/package.json`));
    return typeof pkg.version === "string" ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/** Installs whatever is missing or at another version; returns what was installed. */
export async function ensureInstalled(log: (line: string) => void): Promise<string[]> {
  const missing = Object.entries(PINNED).filter(([name, v]) => installedVersion(name) !== v);
  if (missing.length === 0) return [];
  const specs = missing.map(([name, v]) => `${name}@${v}`);
  log(`installing ${specs.join(" ")} into ${CACHE} (npm)`);
  await Deno.mkdir(CACHE, { recursive: true });
  const pkgPath = `${CACHE}/package.json`;
  try {
    await Deno.stat(pkgPath);
  } catch {
    await Deno.writeTextFile(
      pkgPath,
      JSON.stringify({ name: "mcp-oauth-proxy-bench-cache", private: true }, null, 2) + "\n",
    );
  }
  const out = await new Deno.Command("npm", {
    args: [
      "install",
      "--no-audit",
      "--no-fund",
      "--ignore-scripts",
      "--save-exact",
      "--loglevel=error",
      ...specs,
    ],
    cwd: CACHE,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `npm install failed (${out.code}):\n${new TextDecoder().decode(out.stderr).slice(-4000)}`,
    );
  }
  for (const [name, v] of Object.entries(PINNED)) {
    if (installedVersion(name) !== v) throw new Error(`${name}@${v} is not installed in ${CACHE}`);
  }
  return specs;
}

/** Versions for the report. */
export function versions(): Record<string, string | undefined> {
  return Object.fromEntries(Object.keys(PINNED).map((n) => [n, installedVersion(n)]));
}
