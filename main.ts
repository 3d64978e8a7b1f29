/**
 * mcp-oauth-proxy: serves local stdio MCP servers over Streamable HTTP (and legacy SSE).
 *
 *   deno run <flags> main.ts [serve] [--config FILE]
 *   deno run --allow-read --allow-env main.ts permissions [--config FILE]
 */
import { ConfigError } from "./lib/config/check.ts";
import { configPathFrom, loadConfig, type LoadedConfig } from "./lib/config/load.ts";
import { RELEASE_FLAGS } from "./lib/permissions/derive.ts";
import type { Values } from "./lib/args.ts";
import { isCliCommand, parseCommandLine, SERVE_SYNTAX } from "./lib/cli/options.ts";
import { deriveServeFlags } from "./lib/cli/serve-options.ts";
import { MissingPermission } from "./lib/permissions/self-check.ts";
import type { RunningProxy } from "./lib/serve.ts";
import { Lifecycle } from "./lib/lifecycle.ts";
import { flushLogs } from "./lib/log.ts";
import { VERSION } from "./lib/version.ts";
import { type Io, processIo } from "./lib/cli/common.ts";

const USAGE = `mcp-oauth-proxy ${VERSION}: local stdio MCP servers over HTTP, safely.

Usage:
  main.ts [serve] [--config FILE]     start the proxy (the default command)
  main.ts permissions [--config FILE] print the minimal Deno permission flags for the config
  main.ts permissions --release       print the flags of the config-independent release builds
  main.ts init [options]              write a starter config for login with GitHub (asks, or
                                      takes --public-url, --github-client-id, --allow-user,
                                      --server, --command, --arg ...); never overwrites a file
  main.ts check [--config FILE]       validate the config; print URLs, flags and warnings
  main.ts clients list | revoke ID    the registered clients; revoke one (and its grants)
  main.ts grants list [--user LOGIN] | revoke ID | revoke --all
                                      the sign-ins; revoke one or all (next request: 401)
  main.ts COMMAND --help              the options of init, check, clients, grants
  main.ts --help | --version

Options:
  -c, --config FILE   config file (default: $MCP_PROXY_CONFIG, else ./config.json;
                      with no ./config.json a loopback-only demo starts)
  -l, --listen ADDR   listen on HOST:PORT instead of the config's "listen"
      --no-auth       serve a config without a "github" section: loopback only, no login
  -h, --help          show this help
  -V, --version       print the version

Run it with "deno task start [OPTIONS]", which derives the permission flags from the config
and the options ("deno task start --dry-run" prints the command line it runs).
Exit codes: 0 ok, 1 runtime failure, 2 bad flags or config.`;

const COMMANDS = ["serve", "permissions"] as const;

type ServeValues = Values<typeof SERVE_SYNTAX.options>;

/**
 * Runs the command line with `io` (by default the process's terminal, working directory and
 * environment); returns the exit code, which the process exits with.
 */
export async function main(args: string[], io?: Io): Promise<number> {
  // init, check, clients and grants (lib/cli/) are loaded only when one of them is run, and the
  // server (lib/serve.ts) only to serve: a command starts without loading what it never runs.
  if (isCliCommand(args[0])) {
    const cli = await import("./lib/cli/run.ts");
    return await cli.runCli(args[0], args.slice(1), io);
  }
  const term = io ?? serveIo();
  const request = parseCommand(args, term);
  if (typeof request === "number") return request;
  const { command, values } = request;
  if (command === "permissions" && values.release) {
    // The config-independent flags of the release executables (no config is read).
    term.out(RELEASE_FLAGS.join(" "));
    return 0;
  }
  if (command === "permissions") return await printPermissions(values, term);
  const config = await loadServeConfig(values, term);
  if (typeof config === "number") return config;
  return await serve(config.loaded, config.load, term);
}

/**
 * The process's terminal for `serve` and `permissions`: as the other commands', except that a
 * variable the permission flags do not cover is Deno's error rather than unset.
 */
function serveIo(): Io {
  const io = processIo();
  io.env = (name) => Deno.env.get(name);
  return io;
}

/**
 * The command and its options; or, when the command line is already answered (help, version)
 * or wrong, the exit code after printing the answer or the mistake.
 */
function parseCommand(
  args: string[],
  io: Io,
): { command: typeof COMMANDS[number]; values: ServeValues } | number {
  let parsed;
  try {
    parsed = parseCommandLine(args, SERVE_SYNTAX);
  } catch (error) {
    io.err(`error: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (values.version) {
    io.out(VERSION);
    return 0;
  }
  const command = positionals[0] ?? "serve";
  if (!COMMANDS.includes(command as typeof COMMANDS[number]) || positionals.length > 1) {
    io.err(`error: unknown command "${positionals.join(" ")}"\n\n${USAGE}`);
    return 2;
  }
  return { command: command as typeof COMMANDS[number], values };
}

/**
 * Loads the config `serve` runs with (and returns how to load it again, for a reload), checking
 * that login and `--no-auth` agree; on a mistake prints it and returns exit code 2.
 */
async function loadServeConfig(
  values: ServeValues,
  io: Io,
): Promise<{ loaded: LoadedConfig; load: () => Promise<LoadedConfig> } | number> {
  const where = configPathFrom(values.config, io.env);
  const load = () =>
    loadConfig(where.path, {
      explicit: where.explicit,
      env: io.env,
      cwd: io.cwd,
      listen: values.listen,
    });
  let loaded: LoadedConfig;
  try {
    loaded = await load();
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`config error (${where.path}):\n  ${error.problems.join("\n  ")}`);
      return 2;
    }
    throw error;
  }
  const { config } = loaded;
  if (!config.auth && !config.demo && !values["no-auth"]) {
    io.err(
      `config error (${where.path}):\n  login is not configured. Add a "github" section (docs/login.md), ` +
        `or pass --no-auth to serve on loopback without login.`,
    );
    return 2;
  }
  if (config.auth && values["no-auth"]) {
    io.err(
      `error: --no-auth conflicts with the config's "github" section; remove one of them`,
    );
    return 2;
  }
  // The notices and the --no-auth warning are the proxy's first log lines (lib/serve.ts).
  return { loaded, load };
}

/**
 * Starts the proxy and runs it until a stop signal (SIGINT, SIGTERM) or a failure has shut it
 * down (lib/lifecycle.ts, which exits); SIGHUP reloads the config with `load`. The exit code
 * when it could not start.
 */
async function serve(
  loaded: LoadedConfig,
  load: () => Promise<LoadedConfig>,
  io: Io,
): Promise<number> {
  // Signals and errors are handled from the first moment: a stop that arrives while the proxy
  // starts is carried out as soon as it is up, and every way out stops the children.
  let proxy: RunningProxy | undefined;
  const { reloader, startProxy, StartupError } = await import("./lib/serve.ts");
  const lifecycle = new Lifecycle({ flush: flushLogs });
  lifecycle.install();
  const reload = reloader(load, () => proxy);
  Deno.addSignalListener("SIGHUP", reload);
  try {
    proxy = await startProxy(loaded);
  } catch (error) {
    if (error instanceof MissingPermission) {
      io.err(`error: ${error.message}`);
      return 2;
    }
    if (error instanceof StartupError) {
      io.err(`error: ${error.message}`);
      return 1;
    }
    io.err(
      `error: cannot start on ${loaded.config.listen.hostname}:${loaded.config.listen.port}: ${
        (error as Error).message
      }`,
    );
    return 1;
  }
  lifecycle.started(proxy);
  // The listener ends only through a shutdown, which exits; anything else is a failure.
  await proxy.finished.then(
    () => lifecycle.stop(1, "the listener ended"),
    (error) => lifecycle.stop(1, "the listener failed", error),
  );
  return 1;
}

/** `permissions`: the flags `serve` needs for this config, on one line. */
async function printPermissions(values: ServeValues, io: Io): Promise<number> {
  const { config, listen } = values;
  try {
    const { flags, loaded } = await deriveServeFlags({ config, listen, env: io.env, cwd: io.cwd });
    for (const notice of loaded.notices) io.err(`config notice: ${notice}`);
    io.out(flags.join(" "));
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const { path } = configPathFrom(config, io.env);
    io.err(`config error (${path}):\n  ${error.problems.join("\n  ")}`);
    return 2;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
