/**
 * What each `deno task` runs, decided from the arguments the user added to the task line
 * (`deno task` appends them at the end and offers no `$@`, so the task line itself cannot derive
 * flags from them). Every plan is one or more `deno` command lines with exactly the permission
 * flags the command needs for the config named by `--config` (else `$MCP_PROXY_CONFIG`, else
 * `./config.json`) and the address named by `--listen`. A config that cannot be loaded ends the
 * plan with its message and exit code 2: nothing runs with missing or empty flags.
 */
import { FlagError } from "../args.ts";
import { ConfigError } from "../config/check.ts";
import { configPathFrom } from "../config/load.ts";
import { absolutePath } from "../config/paths.ts";
import { RELEASE_FLAGS } from "../permissions/derive.ts";
import { type Io, loadCliConfig } from "./common.ts";
import { commandFlags } from "./flags.ts";
import {
  CHECK_SYNTAX,
  CLIENTS_SYNTAX,
  COMPILE_SYNTAX,
  GRANTS_SYNTAX,
  INIT_SYNTAX,
  parseCommandLine,
  SERVE_SYNTAX,
  type Syntax,
} from "./options.ts";
import { deriveServeFlags } from "./serve-options.ts";

/** One `deno` command line; `detached` when it runs in its own session (see launch.ts). */
export interface Run {
  args: string[];
  detached: boolean;
}

/** The targets of `deno compile` (https://docs.deno.com/runtime/reference/cli/compile/). */
export const COMPILE_TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
] as const;

const TASKS = ["start", "init", "check", "clients", "grants", "compile", "compile:release"];

const COMPILE_USAGE = `Usage: deno task compile[:TARGET] [--config FILE]
         [--installed-config PATH] [--listen HOST:PORT] [--dry-run]

Builds executables with the permission flags of your config baked in. TARGET is one of
  ${COMPILE_TARGETS.join("\n  ")}
(without one, all four). The executables take the same commands and options as main.ts
(serve is the default).

Options:
  -c, --config FILE              the config to derive the flags from (default:
                                 $MCP_PROXY_CONFIG, else ./config.json; one is required)
      --installed-config PATH    where that config will be on the machine that runs the
                                 executable, when this is a copy: its data directory and
                                 relative paths resolve from there
                                 (e.g. /var/lib/mcp-oauth-proxy/config.json)
  -l, --listen HOST:PORT         derive the network flag for this address (run the
                                 executable with the same --listen)
      --dry-run                  print the deno compile command lines, build nothing
  -h, --help                     show this help

"deno task compile:release" builds the config-independent executables instead
("main.ts permissions --release" prints their flags).`;

/** The entry point every plan runs or compiles. */
export const MAIN = mainPath();

/**
 * The command lines for `task` with the user's `args`; on a mistake, the exit code after the
 * message was written to `io.err`.
 */
export async function planTask(task: string, args: string[], io: Io): Promise<Run[] | number> {
  if (task === "start") return await planServe(args, io);
  if (task === "init") return planInit(args, io);
  if (task === "check" || task === "clients" || task === "grants") {
    return await planCommand(task, args, io);
  }
  if (task === "compile:release") return planRelease(args, io);
  if (task === "compile" || task.startsWith("compile:")) {
    const target = task.slice("compile:".length);
    return await planCompile(target ? [target] : [...COMPILE_TARGETS], args, io);
  }
  io.err(`error: unknown task "${task}" (one of ${TASKS.join(", ")}, compile:TARGET)`);
  return 2;
}

/**
 * `serve`: the flags of `main.ts permissions` for the same `--config` and `--listen`. Help,
 * version and flag mistakes need no permission: main.ts prints them with none.
 */
async function planServe(args: string[], io: Io): Promise<Run[] | number> {
  let parsed;
  try {
    parsed = parseCommandLine(args, SERVE_SYNTAX);
  } catch {
    return [bare(args)];
  }
  const { values, positionals } = parsed;
  if (values.help || values.version) return [bare(args)];
  const command = positionals.length === 0 ? ["serve"] : [];
  try {
    const { flags } = await deriveServeFlags({
      config: values.config,
      listen: values.listen,
      env: io.env,
      cwd: io.cwd,
    });
    // Detached: the proxy gets each stop signal once, from the launcher (see launch.ts).
    return [{ args: ["run", ...flags, MAIN, ...command, ...args], detached: true }];
  } catch (error) {
    return configError(error, values.config, io);
  }
}

/** `init`: read and write of exactly the file it creates. */
function planInit(args: string[], io: Io): Run[] {
  const scanned = scanArgs(args, INIT_SYNTAX);
  if (scanned === null || scanned.help) return [bare(["init", ...args])];
  const target = absolutePath(io.cwd, scanned.config ?? "./config.json");
  const flags = ["--no-prompt", `--allow-read=${target}`, `--allow-write=${target}`];
  return [{ args: ["run", ...flags, MAIN, "init", ...args], detached: false }];
}

const SYNTAX = { check: CHECK_SYNTAX, clients: CLIENTS_SYNTAX, grants: GRANTS_SYNTAX };

/**
 * `check`, `clients`, `grants`: the flags their `--print-flags` prints (flags.ts). Help and flag
 * mistakes need no permission: main.ts prints them with none.
 */
async function planCommand(
  command: "check" | "clients" | "grants",
  args: string[],
  io: Io,
): Promise<Run[] | number> {
  const scanned = scanArgs(args, SYNTAX[command]);
  if (scanned === null || scanned.help) return [bare([command, ...args])];
  const cfg = await loadCliConfig(scanned.config, io, scanned.listen);
  if (cfg === 2) return 2;
  const flags = commandFlags(command === "check" ? "check" : "owner", cfg, {
    cwd: io.cwd,
    path: io.env("PATH"),
  });
  return [{ args: ["run", ...flags, MAIN, command, ...args], detached: false }];
}

/**
 * `compile`: the flags of `serve` for the named config baked into each executable, and no
 * arguments: what `deno compile` puts after the script is placed before the executable's own
 * arguments, so a baked `serve` would turn `serve --config …` into `serve serve …`.
 */
async function planCompile(
  targets: string[],
  args: string[],
  io: Io,
): Promise<Run[] | number> {
  const bad = targets.find((t) => !(COMPILE_TARGETS as readonly string[]).includes(t));
  if (bad) return usageError(`unknown target "${bad}"`, io);
  let values;
  try {
    values = parseCommandLine(args, COMPILE_SYNTAX).values;
  } catch (error) {
    return usageError((error as Error).message, io);
  }
  if (values.help) {
    io.out(COMPILE_USAGE);
    return [];
  }
  const installedAt = values["installed-config"];
  if (installedAt !== undefined && !installedAt.startsWith("/")) {
    return usageError(`--installed-config must be an absolute path, got "${installedAt}"`, io);
  }
  let derived;
  try {
    derived = await deriveServeFlags({
      config: values.config,
      listen: values.listen,
      installedAt,
      env: io.env,
      cwd: io.cwd,
    });
  } catch (error) {
    return configError(error, values.config, io);
  }
  if (derived.loaded.config.demo) {
    return usageError(
      `no config file at ${derived.path}: name yours with --config FILE (and ` +
        `--installed-config PATH when it is a copy), or build the config-independent ` +
        `executables with "deno task compile:release"`,
      io,
    );
  }
  for (const notice of derived.loaded.notices) io.err(`config notice: ${notice}`);
  return targets.map((target) => compileRun(derived.flags, target, "dist"));
}

/** `compile:release`: the config-independent flags, every target. */
function planRelease(args: string[], io: Io): Run[] | number {
  if (args.length > 0) {
    return usageError(`compile:release takes no arguments (got ${args.join(" ")})`, io);
  }
  return COMPILE_TARGETS.map((target) => compileRun(RELEASE_FLAGS, target, "dist/release"));
}

function compileRun(flags: string[], target: string, dir: string): Run {
  return {
    args: [
      "compile",
      ...flags,
      "--target",
      target,
      "--output",
      `${dir}/mcp-oauth-proxy-${target}`,
      MAIN,
    ],
    detached: false,
  };
}

/** main.ts with no permission at all: for help, version and mistakes in the flags. */
function bare(args: string[]): Run {
  return { args: ["run", "--no-prompt", MAIN, ...args], detached: false };
}

function configError(error: unknown, flag: string | undefined, io: Io): number {
  if (!(error instanceof ConfigError)) throw error;
  const { path } = configPathFrom(flag, io.env);
  io.err(`config error (${path}):\n  ${error.problems.join("\n  ")}`);
  return 2;
}

function usageError(message: string, io: Io): number {
  io.err(`error: ${message}\n\n${COMPILE_USAGE}`);
  return 2;
}

/** What the launcher reads of a command line before it derives the flags. */
export interface Scanned {
  config?: string;
  listen?: string;
  help: boolean;
}

/** `--config`, `--listen` and `--help`, the options every command that reads a config has. */
const CONFIG_SYNTAX: Syntax = {
  options: {
    config: { type: "string", short: "c" },
    listen: { type: "string", short: "l" },
    help: { type: "boolean", short: "h" },
  },
  rules: {},
};

/**
 * The `--config` and `--listen` values and whether help was asked, read with the command's own
 * syntax (`-c FILE`, `-cFILE`, `--config FILE`, `--config=FILE`, likewise `-l` and `--listen`;
 * `--` ends the options); null when the command line has a mistake, which the command itself
 * reports.
 */
export function scanArgs(args: string[], syntax: Syntax = CONFIG_SYNTAX): Scanned | null {
  let values;
  try {
    ({ values } = parseCommandLine(args, syntax));
  } catch (error) {
    if (error instanceof FlagError) return null;
    throw error;
  }
  const out: Scanned = { help: values.help === true };
  if (typeof values.config === "string") out.config = values.config;
  if (typeof values.listen === "string") out.listen = values.listen;
  return out;
}

function mainPath(): string {
  const url = new URL("../../main.ts", import.meta.url);
  return url.protocol === "file:" ? decodeURIComponent(url.pathname) : url.href;
}
