/**
 * Starts the proxy under test on a config written to a temp dir, and reads its printed URLs:
 * inside the test process by default, or as a real `main.ts serve` process with exactly the
 * permission flags that `main.ts permissions` derives for the config (see `StartOptions.process`).
 */
import { loadConfig, type LoadedConfig } from "../../lib/config/load.ts";
import { derivePermissions } from "../../lib/permissions/derive.ts";
import { bundledFixture } from "./bundle.ts";
import { CHILD_ENV_VARS } from "../../lib/children/environment.ts";
import { type CountFreeFiles, freeFileDescriptors } from "../../lib/open-files.ts";
import { findCommand } from "../../lib/cli/which.ts";
import {
  Child,
  type LaunchChild,
  launchDetached,
  type SpawnChild,
} from "../../lib/children/child.ts";

export const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(
  /\/$/,
  "",
);
/** The fixture stdio server (tests/fixtures/stdio-server.ts), bundled into one file to start fast. */
export const FIXTURE = await bundledFixture("stdio-server");
/** The conformance fixture server (tests/fixtures/conformance-server.ts), bundled likewise. */
export const CONFORMANCE_FIXTURE = await bundledFixture("conformance-server");

/** A config entry running the fixture stdio server. */
export function fixtureServer(extra: Record<string, unknown> = {}, flags: string[] = []) {
  return {
    command: "deno",
    args: ["run", "--no-prompt", "--allow-env", FIXTURE, ...flags],
    ...extra,
  };
}

/**
 * The fixture server that crashes at start while the file `marker` exists. A shell checks the
 * marker, so a crash loop's many starts cost no Deno start each; it then becomes the fixture.
 */
export function crashingServer(marker: string, extra: Record<string, unknown> = {}) {
  const script = `if [ -e "$0" ]; then echo "fixture: crashing on start" >&2; exit 1; fi\n` +
    `exec deno run --no-prompt --allow-env "$1"`;
  return { command: "sh", args: ["-c", script, marker, FIXTURE], ...extra };
}

export interface ProxyProcess {
  origin: string;
  /** The owner's loopback listener (/metrics, /healthz details), e.g. http://127.0.0.1:8081. */
  admin: string;
  /** The MCP endpoint URL printed for a server. */
  url(name: string): string;
  /** The proxy's process (an in-process proxy has none: reading this throws). */
  process: Deno.ChildProcess;
  dir: string;
  configPath: string;
  /** The config as written to `configPath` (with the listen port picked): start it again to restart. */
  config: Record<string, unknown>;
  flags: string[];
  /** Everything the proxy wrote to stderr so far. */
  logs(): string;
  /** Everything the proxy wrote to stdout so far. */
  stdout(): string;
  /** Resolves when a log line matching `pattern` appears. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /**
   * Reloads the config file as SIGHUP does: a process gets SIGHUP; an in-process proxy runs the
   * reload `main.ts serve` runs on it (lib/serve.ts `reloader`).
   */
  reload(): void;
  /**
   * Sends a signal and waits for the exit status. An in-process proxy takes SIGTERM and SIGINT
   * only: it shuts down as `main.ts serve` does on them, and the status is exit code 0.
   */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

export interface StartOptions {
  /** Extra environment for the proxy process. */
  env?: Record<string, string>;
  /** Use these flags instead of the derived ones. */
  flags?: (derived: string[]) => string[];
  /** Directory for config.json and data (a fresh temp dir by default). */
  dir?: string;
  args?: string[];
  /** A secret path for the generated publicUrl (login configs), e.g. "/k3J9x". */
  publicPath?: string;
  /** A command that execs the proxy (its argv follows), e.g. `sh -c 'ulimit -n 256; exec "$0" "$@"'`. */
  prefix?: string[];
  /** Leave stderr unread (then `logs()` stays empty and `process.stderr` is the caller's). */
  unreadStderr?: boolean;
  /**
   * Start `main.ts serve` as a process. Without this the proxy runs inside the test process
   * (lib/serve.ts `startProxy`, which `main.ts serve` runs): the same config, listeners, children,
   * logs and printed lines, without a process start (about 0.2 s of CPU each). Tests of the
   * process itself (flags, permissions, signals, SIGHUP reloads, exit codes, its pid and its
   * children's ancestry) need the process; `flags`, `prefix`, `args`, `unreadStderr` and an `env`
   * giving a variable the running proxy reads (PATH, HOME, ...) a value of its own start one too.
   */
  process?: boolean;
}

/**
 * Writes `config` to a temp dir and starts `main.ts serve` on it. Without `listen` the proxy
 * listens on an OS-chosen port; a login config's publicUrl names its port, so that port (and the
 * admin port) is picked before the start, and picked again should another process take one of
 * them first (see `onFreePort`).
 */
export function startProxy(
  config: Record<string, unknown>,
  options: StartOptions = {},
): Promise<ProxyProcess> {
  if (!config.github || config.listen) return launch(config, options);
  return onFreePort((port) => launch({ listen: `127.0.0.1:${port}`, ...config }, options));
}

/** A proxy's config written out, loaded and its flags derived: what both kinds of start need. */
interface Prepared {
  dir: string;
  configPath: string;
  full: Record<string, unknown>;
  env: Record<string, string>;
  loaded: LoadedConfig;
  /** Loads the config file again (what a reload reads). */
  load: () => Promise<LoadedConfig>;
  /** Removes `dir` after the stop, unless the caller gave it. */
  removeDir: () => Promise<void>;
  flags: string[];
  /** The servers whose URL lines the start prints. */
  names: string[];
}

async function prepare(config: Record<string, unknown>, options: StartOptions): Promise<Prepared> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "mop-test-" });
  const configPath = `${dir}/config.json`;
  const full: Record<string, unknown> = {
    listen: "127.0.0.1:0",
    dataDir: `${dir}/data`,
    // The default admin port (listen port + 1) may be taken by a parallel test: pick a free one.
    // A fixed port keeps --allow-net to host:port pairs (an OS-chosen one needs the whole host).
    ...(config.github ? { admin: { listen: `127.0.0.1:${await adminPort(config.listen)}` } } : {}),
    ...config,
  };
  if (full.github && !full.publicUrl) {
    full.publicUrl = `http://${full.listen}${options.publicPath ?? ""}`;
  }
  await Deno.writeTextFile(configPath, JSON.stringify(full, null, 2));
  const env = { ...options.env };
  const load = () =>
    loadConfig(configPath, {
      explicit: true,
      env: (name) => env[name] ?? Deno.env.get(name),
      cwd: dir,
    });
  const loaded = await load();
  const derived = derivePermissions(loaded, configPath);
  const flags = options.flags ? options.flags(derived) : derived;
  const names = Object.entries(full.mcpServers as Record<string, { disabled?: boolean }>)
    .filter(([, s]) => !s.disabled).map(([n]) => n);
  const removeDir = () =>
    options.dir ? Promise.resolve() : Deno.remove(dir, { recursive: true }).catch(() => {});
  return { dir, configPath, full, env, loaded, load, removeDir, flags, names };
}

/** What a proxy wrote, and waiting for what it will write. */
class Output {
  out = "";
  err = "";
  exited = false;
  #waiters: Array<() => void> = [];

  wake(): void {
    this.#waiters.splice(0).forEach((w) => w());
  }

  addOut(s: string): void {
    this.out += s;
    this.wake();
  }

  addErr(s: string): void {
    this.err += s;
    this.wake();
  }

  /** Resolves with `check`'s answer once it has one; throws when the proxy exits or time is up. */
  async until(check: () => string | undefined, timeoutMs: number, what: string): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = check();
      if (found !== undefined) return found;
      const state = this.exited ? "proxy exited" : Date.now() >= deadline ? "timed out" : "";
      if (state) {
        throw new Error(
          `${state} while waiting for ${what}\nstdout:\n${this.out}\nstderr:\n${this.err}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(deadline - Date.now(), 200));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The printed URL lines and the owner's origin, once every server's line is out. */
  urls(names: string[]): Promise<{ urls: Map<string, string>; admin: string }> {
    const urls = new Map<string, string>();
    let admin = "";
    return this.until(
      () => {
        for (const line of this.out.split("\n")) {
          const m = /^(\S+)\s+(https?:\/\/\S+)$/.exec(line.trim());
          if (m) urls.set(m[1], m[2]);
          const a = /^Owner endpoints .*?(http:\/\/\S+)\/metrics /.exec(line);
          if (a) admin = a[1];
        }
        return names.every((n) => urls.has(n)) && admin ? "ok" : undefined;
      },
      30_000,
      "the server URLs",
    ).then(() => ({ urls, admin }));
  }

  waitForLog(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    return this.until(
      () => this.err.split("\n").find((l) => pattern.test(l)),
      timeoutMs,
      `a log line matching ${pattern}`,
    );
  }
}

/** Variables the running proxy reads (the rest of `env` only feeds the config's references). */
const RUNTIME_ENV = new Set([...CHILD_ENV_VARS, "PATH"]);

/** Whether a start needs `main.ts serve` as a process (see `StartOptions.process`). */
export function needsProcess(options: StartOptions): boolean {
  return Boolean(
    options.process || options.flags || options.prefix || options.args || options.unreadStderr ||
      Object.entries(options.env ?? {}).some(([name, value]) =>
        (RUNTIME_ENV.has(name) || name.startsWith("LC_")) && value !== Deno.env.get(name)
      ),
  );
}

function launch(config: Record<string, unknown>, options: StartOptions): Promise<ProxyProcess> {
  return needsProcess(options) ? spawnProxy(config, options) : runInProcess(config, options);
}

async function spawnProxy(
  config: Record<string, unknown>,
  options: StartOptions,
): Promise<ProxyProcess> {
  const prepared = await prepare(config, options);
  const { dir, configPath, full, env, flags } = prepared;
  const [command, ...prefix] = [...options.prefix ?? [], Deno.execPath()];
  const process = new Deno.Command(command, {
    args: [
      ...prefix,
      "run",
      ...flags,
      `${ROOT}/main.ts`,
      "serve",
      "--config",
      configPath,
      ...(full.github ? [] : ["--no-auth"]),
      ...(options.args ?? []),
    ],
    cwd: dir,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = new Output();
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) add(chunk);
    output.wake();
  };
  const pumps = Promise.all([
    pump(process.stdout, (s) => output.addOut(s)),
    options.unreadStderr ? Promise.resolve() : pump(process.stderr, (s) => output.addErr(s)),
  ]);
  const status = process.status;
  status.then(() => {
    output.exited = true;
    output.wake();
  });
  const { removeDir } = prepared;
  let printed;
  try {
    printed = await output.urls(prepared.names);
  } catch (error) {
    try {
      process.kill("SIGKILL");
    } catch { /* gone */ }
    await status;
    await pumps;
    await removeDir();
    throw error;
  }
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const reload = () => process.kill("SIGHUP");
  return proxyHandle(
    prepared,
    printed,
    output,
    process,
    reload,
    (signal) =>
      stopped ??= (async () => {
        if (!output.exited) {
          try {
            process.kill(signal);
          } catch { /* already gone */ }
        }
        const s = await status;
        await pumps;
        await removeDir();
        return s;
      })(),
  );
}

/**
 * `count` (free file descriptors, counted up to `enough`) asked once for all the in-process
 * proxies of a test worker, and again only when a proxy asks for more than the last count reached:
 * each count opens /dev/null up to ~1,300 times, 15–70 ms of CPU as the machine is loaded.
 */
export function countOnce(count: CountFreeFiles): CountFreeFiles {
  let counted: { enough: number; free: number | null } | undefined;
  return (enough) => {
    if (!counted || (counted.free === counted.enough && enough > counted.enough)) {
      counted = { enough, free: count(enough) };
    }
    return counted.free === null ? null : Math.min(counted.free, enough);
  };
}

const countFreeFilesOnce = countOnce(freeFileDescriptors);

/**
 * Where a spawn with `options` finds `command`, as Deno looks it up (lib/cli/which.ts, which
 * `check` uses): on the child's PATH, else the test process's; a path with a slash from `cwd`.
 */
function resolve(command: string, options: Deno.CommandOptions): string | undefined {
  const path = options.env?.PATH ?? Deno.env.get("PATH");
  const lookup = findCommand(command, { cwd: options.cwd?.toString() ?? Deno.cwd(), path });
  return "found" in lookup ? lookup.found : undefined;
}

/** util-linux's setsid(1), if this machine has it (Debian does; macOS does not). */
const SETSID = resolve("setsid", { env: { PATH: "/usr/bin:/bin" } });

/**
 * How in-process proxies start their children: through setsid(1), which Deno starts with
 * posix_spawn, instead of Deno's `detached`, which forks the test process first. A fork
 * write-protects every page of the parent, and each page it writes afterwards faults again: the
 * test process (four workers, ~800 MB) starts ~130 children for in-process proxies per run, and
 * those forks cost ~15 s of the run's CPU (its page faults: ~720,000 with `detached`, ~280,000
 * without). setsid(1) makes a new session as `detached` does and, not being a group leader,
 * execs in place: the pid, the process group, argv and the pipes are the same. A command that
 * would not start goes the product's way (`launchDetached`), so its error is the one a proxy gives.
 * Process proxies (`process: true`, the orphan tests among them) keep `launchDetached`.
 */
export const launchViaSetsid: LaunchChild = (command, options) => {
  const path = resolve(command, options);
  if (!SETSID || !path) return launchDetached(command, options);
  // Deno runs a command by the path it found, and that path is the child's argv[0]: so here too.
  return new Deno.Command(SETSID, { ...options, args: [path, ...options.args ?? []] }).spawn();
};

const spawnViaSetsid: SpawnChild = (spec, log, groups) =>
  Child.spawn(spec, log, groups, launchViaSetsid);

/**
 * Runs the proxy in this process: `startProxy` of lib/serve.ts on the loaded config, its printed
 * lines and log lines kept as a process's stdout and stderr would be; `stop` shuts it down as
 * lib/lifecycle.ts does on SIGTERM.
 */
async function runInProcess(
  config: Record<string, unknown>,
  options: StartOptions,
): Promise<ProxyProcess> {
  const prepared = await prepare(config, options);
  const output = new Output();
  const { reloader, startProxy: start } = await import("../../lib/serve.ts");
  const { Lifecycle } = await import("../../lib/lifecycle.ts");
  const { removeDir } = prepared;
  let running;
  try {
    running = await start(prepared.loaded, {
      print: (line) => output.addOut(`${line}\n`),
      write: (line) => output.addErr(line),
      countFreeFiles: countFreeFilesOnce,
      spawnChild: spawnViaSetsid,
    });
  } catch (error) {
    await removeDir();
    throw error;
  }
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal) => {
    if (signal !== "SIGTERM" && signal !== "SIGINT") {
      return Promise.reject(
        new Error(`an in-process proxy cannot take ${signal}: start it with \`process: true\``),
      );
    }
    return stopped ??= (async () => {
      // The shutdown `main.ts serve` runs on the signal (its log lines, its deadline), with the
      // exit code recorded instead of exiting.
      let code = 0;
      const lifecycle = new Lifecycle({ exit: (c) => code = c });
      lifecycle.started(running);
      await lifecycle.stop(0, `received ${signal}`);
      output.exited = true;
      output.wake();
      await removeDir();
      return { success: code === 0, code, signal: null };
    })();
  };
  const noProcess = () => {
    throw new Error("an in-process proxy has no process: start it with `process: true`");
  };
  let printed;
  try {
    printed = await output.urls(prepared.names);
  } catch (error) {
    // As a process that never printed its URLs is killed: nothing is left running.
    await stop("SIGTERM");
    throw error;
  }
  const reload = reloader(prepared.load, () => running);
  return proxyHandle(prepared, printed, output, undefined, () => void reload(), stop, noProcess);
}

function proxyHandle(
  prepared: Prepared,
  printed: { urls: Map<string, string>; admin: string },
  output: Output,
  process: Deno.ChildProcess | undefined,
  reload: () => void,
  stop: (signal: Deno.Signal) => Promise<Deno.CommandStatus>,
  noProcess?: () => never,
): ProxyProcess {
  const { full, dir, configPath, flags } = prepared;
  const { urls, admin } = printed;
  const first = urls.get(prepared.names[0])!;
  // An https publicUrl is a tunnel's address: the proxy itself listens on `listen`.
  const origin = first.startsWith("http://") ? new URL(first).origin : `http://${full.listen}`;
  const handle = {
    origin,
    admin,
    url: (name: string) => urls.get(name) ?? `${origin}/mcp/${name}`,
    dir,
    configPath,
    config: full,
    flags,
    logs: () => output.err,
    stdout: () => output.out,
    waitForLog: (pattern: RegExp, timeoutMs?: number) => output.waitForLog(pattern, timeoutMs),
    reload,
    stop: (signal: Deno.Signal = "SIGTERM") => stop(signal),
  };
  // An in-process proxy's `process` throws when read; not enumerable, so `{ ...proxy }` works.
  return Object.defineProperty(
    handle,
    "process",
    process ? { value: process, enumerable: true } : { get: noProcess, enumerable: false },
  ) as ProxyProcess;
}

/**
 * A port that was free a moment ago. Another process may take it before it is used: start
 * through `onFreePort`, which picks again when that happened.
 */
export async function freePort(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  await Promise.resolve();
  return port;
}

/**
 * A free port for the admin listener other than the public one `listen` names: that one was
 * picked free too and is not bound yet, so the same port can come back.
 */
async function adminPort(listen: unknown): Promise<number> {
  const taken = typeof listen === "string" ? Number(listen.split(":").pop()) : 0;
  for (;;) {
    const port = await freePort();
    if (port !== taken) return port;
  }
}

/** Matches the error of a start whose port another process took first (EADDRINUSE). */
export const ADDR_IN_USE = /Address already in use|AddrInUse/;

/**
 * Runs `start` on a port that `pick` found free (for configs that must name their port before
 * the start, e.g. in publicUrl) and, when the start fails because another process bound that
 * port meanwhile, runs it again on a newly picked one.
 */
export async function onFreePort<T>(
  start: (port: number) => Promise<T>,
  pick: () => Promise<number> = freePort,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    const port = await pick();
    try {
      return await start(port);
    } catch (error) {
      if (attempt >= 10 || !ADDR_IN_USE.test(String(error))) throw error;
    }
  }
}
