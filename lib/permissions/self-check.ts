/**
 * The proxy checks its own Deno permissions at start against the flags its config needs
 * (`derivePermissions`): a missing one stops it with the exact flag to add; a broader grant than
 * needed (`--allow-all`, unrestricted run/net/read/write/env) is named in a warning.
 */
import type { LoadedConfig } from "../config/load.ts";
import { derivePermissions } from "./derive.ts";

/** The proxy lacks a permission its config needs. */
export class MissingPermission extends Error {
  constructor(readonly flag: string, detail: string, readonly flags: string[]) {
    super(
      `missing permission: ${detail}. Add ${flag} ` +
        `(this config needs: deno run ${flags.join(" ")} main.ts serve)`,
    );
    this.name = "MissingPermission";
  }
}

type Query = Deno.PermissionDescriptor;

/** Throws MissingPermission, or returns warnings about grants broader than the config needs. */
export function checkOwnPermissions(loaded: LoadedConfig, configPath: string): string[] {
  const flags = derivePermissions(loaded, configPath);
  const warnings: string[] = [];
  for (const flag of flags) {
    const m = /^--allow-(net|read|write|run|env)=(.*)$/.exec(flag);
    if (m) {
      for (const value of m[2].split(",")) {
        const query = descriptor(m[1], value);
        if (!query || Deno.permissions.querySync(query).state === "granted") continue;
        if (m[1] === "run" && notOnPath(value)) {
          // Not a permission problem: that server will answer initialize with "not found".
          warnings.push(`command "${value}" is not found on PATH; its server cannot start`);
          continue;
        }
        throw new MissingPermission(flag, `${m[1]} ${value}`, flags);
      }
    }
    if (flag === "--unstable-kv" && typeof Deno.openKv !== "function") {
      throw new MissingPermission(flag, "the Deno KV store (login state)", flags);
    }
  }
  const broad = (["run", "net", "read", "write", "env", "ffi", "sys"] as const)
    .filter((name) => Deno.permissions.querySync({ name } as Query).state === "granted");
  if (broad.length === 7) {
    return [
      ...warnings,
      `broader permission than needed: the proxy runs with --allow-all; it needs only: ${
        flags.join(" ")
      }`,
    ];
  }
  return [
    ...warnings,
    ...broad.map((name) =>
      `broader permission than needed: --allow-${name} is unrestricted; this config needs ${
        flags.find((f) => f.startsWith(`--allow-${name}=`)) ?? `no --allow-${name}`
      }`
    ),
  ];
}

/**
 * Whether `command` cannot be found at all. Deno cannot grant a run permission for a command it
 * cannot resolve, so the query alone does not tell "not permitted" from "not installed"; a spawn
 * attempt does, and it cannot start anything here because the query already said no.
 */
function notOnPath(command: string): boolean {
  try {
    const child = new Deno.Command(command, { stdin: "null", stdout: "null", stderr: "null" })
      .spawn();
    child.kill("SIGKILL");
    child.status.catch(() => {});
    return false;
  } catch (error) {
    return error instanceof Deno.errors.NotFound;
  }
}

function descriptor(name: string, value: string): Query | null {
  switch (name) {
    case "net":
      return { name: "net", host: value };
    case "read":
      return { name: "read", path: value };
    case "write":
      return { name: "write", path: value };
    case "run":
      return { name: "run", command: value };
    case "env":
      // A wildcard grant (LC_*) is checked through one variable it covers.
      return { name: "env", variable: value.endsWith("*") ? value.slice(0, -1) + "ALL" : value };
  }
  return null;
}
