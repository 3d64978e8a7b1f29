/**
 * Starts the proxy under test as a real process, with exactly the permission flags that
 * `main.ts permissions` derives for the test's config, and reads its printed URLs.
 */
import { loadConfig } from "../../lib/config/load.ts";
import { derivePermissions } from "../../lib/permissions/derive.ts";
import { bundledFixture } from "./bundle.ts";

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
  /** Sends a signal and waits for the exit status. */
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

async function launch(
  config: Record<string, unknown>,
  options: StartOptions,
): Promise<ProxyProcess> {
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
  const loaded = await loadConfig(configPath, {
    explicit: true,
    env: (name) => env[name] ?? Deno.env.get(name),
    cwd: dir,
  });
  const derived = derivePermissions(loaded, configPath);
  const flags = options.flags ? options.flags(derived) : derived;
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
  let out = "";
  let err = "";
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      add(chunk);
      wake();
    }
    wake();
  };
  const pumps = Promise.all([
    pump(process.stdout, (s) => out += s),
    options.unreadStderr ? Promise.resolve() : pump(process.stderr, (s) => err += s),
  ]);
  const status = process.status;
  let exited = false;
  status.then(() => {
    exited = true;
    wake();
  });

  const until = async (check: () => string | undefined, timeoutMs: number, what: string) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = check();
      if (found !== undefined) return found;
      if (exited) {
        throw new Error(`proxy exited while waiting for ${what}\nstdout:\n${out}\nstderr:\n${err}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${what}\nstdout:\n${out}\nstderr:\n${err}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };

  const urls = new Map<string, string>();
  let admin = "";
  const names = Object.entries(full.mcpServers as Record<string, { disabled?: boolean }>)
    .filter(([, s]) => !s.disabled).map(([n]) => n);
  try {
    await until(
      () => {
        for (const line of out.split("\n")) {
          const m = /^(\S+)\s+(https?:\/\/\S+)$/.exec(line.trim());
          if (m) urls.set(m[1], m[2]);
          const a = /^Owner endpoints .*?(http:\/\/\S+)\/metrics /.exec(line);
          if (a) admin = a[1];
        }
        return names.every((n) => urls.has(n)) && admin ? "ok" : undefined;
      },
      30_000,
      "the server URLs",
    );
  } catch (error) {
    try {
      process.kill("SIGKILL");
    } catch { /* gone */ }
    await status;
    await pumps;
    if (!options.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  const first = urls.get(names[0])!;
  // An https publicUrl is a tunnel's address: the proxy itself listens on `listen`.
  const origin = first.startsWith("http://") ? new URL(first).origin : `http://${full.listen}`;
  let stopped: Promise<Deno.CommandStatus> | undefined;
  return {
    origin,
    admin,
    url: (name) => urls.get(name) ?? `${origin}/mcp/${name}`,
    process,
    dir,
    configPath,
    config: full,
    flags,
    logs: () => err,
    stdout: () => out,
    waitForLog: (pattern, timeoutMs = 15_000) =>
      until(
        () => err.split("\n").find((l) => pattern.test(l)),
        timeoutMs,
        `a log line matching ${pattern}`,
      ),
    stop: (signal = "SIGTERM") =>
      stopped ??= (async () => {
        if (!exited) {
          try {
            process.kill(signal);
          } catch { /* already gone */ }
        }
        const s = await status;
        await pumps;
        if (!options.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
        return s;
      })(),
  };
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
