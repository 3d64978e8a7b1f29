/**
 * The Deno permission flags of the setup and owner commands, printed by `--print-flags`; the
 * `deno task` wrappers run each command with exactly these (task-plan.ts), as `deno task start`
 * runs the proxy with what `main.ts permissions` prints:
 *
 * - `init`: read and write of the file it creates (task-plan.ts).
 * - `check`: read of the config, the data directory, every `PATH` directory and each command
 *   given as a path (to find the commands); write of the data directory (the writability test,
 *   which leaves nothing behind); the variables the config references plus `PATH` and
 *   `MCP_PROXY_CONFIG`. No net, no run.
 * - `clients`, `grants`: read of the config and the data directory, write of the data directory
 *   (the store), the variables the config references and `MCP_PROXY_CONFIG`, `--unstable-kv`;
 *   with a PostgreSQL store, its host:port (or Unix socket) and the client's variables instead
 *   of the data directory and `--unstable-kv`. `check` gets the same database access (it
 *   connects to report whether the database answers).
 */
import { CONFIG_ENV } from "../config/load.ts";
import { absolutePath } from "../config/paths.ts";
import { storeAccess } from "../config/store-schema.ts";
import type { CliConfig } from "./common.ts";

/** The commands whose flags are derived here (`clients` and `grants` are "owner"). */
export type FlagsFor = "check" | "owner";

/** The flags `command` needs for this config; `path` is the `PATH` `check` searches. */
export function commandFlags(
  command: FlagsFor,
  cfg: CliConfig,
  options: { cwd: string; path: string | undefined },
): string[] {
  const { config, envRefs } = cfg.loaded;
  const read = [cfg.absolute, config.dataDir];
  const env = [CONFIG_ENV, ...envRefs];
  if (config.store) return withStore(command, cfg, options, storeAccess(config.store));
  if (command === "owner") {
    return [
      "--no-prompt",
      "--unstable-kv",
      `--allow-read=${unique(read).join(",")}`,
      `--allow-write=${config.dataDir}`,
      `--allow-env=${unique(env).join(",")}`,
    ];
  }
  const searched = (path: string | undefined, cwd: string) => {
    for (const dir of (path ?? "").split(":")) if (dir) read.push(absolutePath(cwd, dir));
  };
  searched(options.path, options.cwd);
  for (const server of config.servers) {
    const cwd = server.cwd ?? options.cwd;
    if (server.command.includes("/")) read.push(absolutePath(cwd, server.command));
    // A server's own PATH is where its command is looked up.
    else if (server.env.PATH !== undefined) searched(server.env.PATH, cwd);
  }
  env.push("PATH");
  return [
    "--no-prompt",
    `--allow-read=${unique(read).join(",")}`,
    `--allow-write=${config.dataDir}`,
    `--allow-env=${unique(env).join(",")}`,
  ];
}

/** The flags of `command` with a PostgreSQL store. */
function withStore(
  command: FlagsFor,
  cfg: CliConfig,
  options: { cwd: string; path: string | undefined },
  access: ReturnType<typeof storeAccess>,
): string[] {
  const { config, envRefs } = cfg.loaded;
  const plain = command === "check"
    ? commandFlags(command, {
      ...cfg,
      loaded: { ...cfg.loaded, config: { ...config, store: null } },
    }, options)
    : [
      "--no-prompt",
      `--allow-read=${cfg.absolute}`,
      `--allow-env=${unique([CONFIG_ENV, ...envRefs]).join(",")}`,
    ];
  const out = plain.map((flag) => {
    if (flag.startsWith("--allow-read=") && access.socket.length) {
      return `${flag},${access.socket.join(",")}`;
    }
    if (flag.startsWith("--allow-write=") && access.socket.length) {
      return `${flag},${access.socket.join(",")}`;
    }
    if (flag.startsWith("--allow-env=")) return `${flag},${access.env.join(",")}`;
    return flag;
  });
  if (command === "owner" && access.socket.length) {
    out.push(`--allow-write=${access.socket.join(",")}`);
  }
  if (access.net.length) out.push(`--allow-net=${access.net.join(",")}`);
  return out;
}

/**
 * What `--print-flags` prints when the config cannot be loaded: enough for the command itself to
 * read the config and report what is wrong with it.
 */
export function fallbackFlags(configPath: string): string[] {
  return ["--no-prompt", `--allow-read=${configPath}`, "--allow-env"];
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
