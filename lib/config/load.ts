/**
 * Finds, reads and validates the config file: `--config FILE`, else `$MCP_PROXY_CONFIG`, else
 * `./config.json`. With no file at the default path, the embedded demo config is used.
 */
import { Checker, ConfigError, keyPath } from "./check.ts";
import { isRecord } from "../jsonrpc.ts";
import { findDuplicateKeys, stripJsonComments } from "./jsonc.ts";
import { defaultAdmin } from "./admin-schema.ts";
import { absolutePath, dirname } from "./paths.ts";
import {
  type Config,
  DEFAULT_LIMITS,
  hostPortProblem,
  isLoopbackHost,
  parseConfig,
  parseHostPort,
  SERVER_DEFAULTS,
} from "./schema.ts";

export const DEFAULT_CONFIG_PATH = "./config.json";
export const CONFIG_ENV = "MCP_PROXY_CONFIG";

export interface LoadedConfig {
  config: Config;
  notices: string[];
  /** Names of the environment variables the file references with `${VAR}`. */
  envRefs: string[];
  /** `github.clientSecret` is written in the file itself rather than as `${VAR}`. */
  literalSecret: boolean;
}

/** Where the config comes from: the flag, the environment variable, or the default path. */
export function configPathFrom(
  flag: string | undefined,
  env: (name: string) => string | undefined,
) {
  if (flag !== undefined) return { path: flag, explicit: true };
  const fromEnv = env(CONFIG_ENV);
  if (fromEnv) return { path: fromEnv, explicit: true };
  return { path: DEFAULT_CONFIG_PATH, explicit: false };
}

/**
 * Loads the config at `path`. A missing file is an error when the path was given explicitly;
 * at the default path it yields the demo config (loopback only, no login).
 */
export async function loadConfig(
  path: string,
  options: {
    explicit: boolean;
    env: (name: string) => string | undefined;
    cwd: string;
    /** A `--listen` override of the file's "listen". */
    listen?: string;
    /**
     * The absolute path the file will have where it is used, when it is read from a copy
     * elsewhere (a build for another machine): relative paths in it resolve from there.
     */
    installedAt?: string;
  },
): Promise<LoadedConfig> {
  const absolute = absolutePath(options.cwd, path);
  let text: string;
  try {
    text = await Deno.readTextFile(absolute);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !options.explicit) {
      const config = demoConfig(options.cwd);
      if (options.listen !== undefined) {
        config.listen = checkDemoListen(options.listen);
        config.admin = defaultAdmin(config.listen) ?? config.admin;
      }
      return { config, notices: [], envRefs: [], literalSecret: false };
    }
    if (error instanceof Deno.errors.NotFound) {
      throw new ConfigError([`${path}: config file not found`]);
    }
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw new ConfigError([`${path}: cannot read the config file (${error.message})`]);
    }
    throw new ConfigError([`${path}: cannot read the config file (${String(error)})`]);
  }
  const source = options.installedAt ?? absolute;
  return parseConfigText(text, { source, env: options.env, listen: options.listen });
}

/**
 * Parses config text: JSON (comments and trailing commas allowed, see jsonc.ts), then `${VAR}`
 * substitution, then validation.
 */
export function parseConfigText(
  text: string,
  options: { source: string; env: (name: string) => string | undefined; listen?: string },
): LoadedConfig {
  let raw: unknown;
  let json: string;
  try {
    json = stripJsonComments(text);
    raw = JSON.parse(json);
  } catch (error) {
    throw new ConfigError([`${options.source}: not valid JSON (${jsonErrorWhere(text, error)})`]);
  }
  const ck = new Checker();
  for (const { path, key, lines } of findDuplicateKeys(json)) {
    ck.fail(
      [...path, key].reduce<string>(keyPath, ""),
      `written twice (lines ${lines[0]} and ${lines[1]}); JSON would keep only the last one ` +
        `silently: rename or merge them`,
    );
  }
  ck.throwIfFailed();
  const envRefs = new Set<string>();
  const substituted = substitute(raw, "", options.env, ck, envRefs);
  ck.throwIfFailed();
  if (options.listen !== undefined && isRecord(substituted)) substituted.listen = options.listen;
  const config = parseConfig(substituted, {
    source: options.source,
    baseDir: dirname(options.source),
  }, ck);
  return {
    config,
    notices: ck.notices,
    envRefs: [...envRefs].sort(),
    literalSecret: isLiteralSecret(raw),
  };
}

/** Whether the file holds a client secret itself (a non-empty string without `${`). */
function isLiteralSecret(raw: unknown): boolean {
  const secret = isRecord(raw) && isRecord(raw.github) ? raw.github.clientSecret : undefined;
  return typeof secret === "string" && secret !== "" && !secret.includes("${");
}

const VAR_PATTERN = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

function substitute(
  value: unknown,
  path: string,
  env: (name: string) => string | undefined,
  ck: Checker,
  refs: Set<string>,
): unknown {
  if (typeof value === "string") {
    if (!value.includes("${")) return value;
    return value.replace(VAR_PATTERN, (_, name: string) => {
      refs.add(name);
      const found = readEnv(env, name);
      if (found === undefined) {
        ck.fail(path, `environment variable ${name} is not set`);
        return "";
      }
      return found;
    });
  }
  if (Array.isArray(value)) {
    return value.map((item, i) => substitute(item, keyPath(path, i), env, ck, refs));
  }
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = substitute(v, keyPath(path, k), env, ck, refs);
    }
    return out;
  }
  return value;
}

function readEnv(env: (name: string) => string | undefined, name: string): string | undefined {
  try {
    return env(name);
  } catch {
    // Not permitted to read it: the permission flags were derived from another config.
    return undefined;
  }
}

function jsonErrorWhere(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const m = /position (\d+)/.exec(message);
  if (!m) return message;
  const offset = Number(m[1]);
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return `${message.replace(/ in JSON at position \d+.*$/, "")} at line ${line}, column ${column}`;
}

/**
 * The embedded demo: one bundled harmless server on 127.0.0.1:8080, no login; its data directory
 * is `./data` in `cwd`.
 */
export function demoConfig(cwd: string = Deno.cwd()): Config {
  return {
    source: null,
    demo: true,
    listen: { hostname: "127.0.0.1", port: 8080 },
    dataDir: absolutePath(cwd, "./data"),
    servers: [{
      name: "demo",
      command: "deno",
      // Quiet: no coloured "Download …" lines from Deno in the proxy's log.
      args: ["run", "--quiet", "--no-prompt", demoServerPath()],
      env: { NO_COLOR: "1" },
      mode: "shared",
      idleTimeoutMs: SERVER_DEFAULTS.idleTimeoutMs,
      requestTimeoutMs: SERVER_DEFAULTS.requestTimeoutMs,
      maxInFlight: SERVER_DEFAULTS.maxInFlight,
      restartDelayMs: SERVER_DEFAULTS.restartDelayMs,
      logArguments: false,
      warm: SERVER_DEFAULTS.warm,
    }],
    allowedOrigins: ["http://localhost:6274", "http://127.0.0.1:6274"],
    legacySse: true,
    logLevel: "info",
    log: { logFormat: "text", accessLog: { to: "stderr" } },
    limits: { ...DEFAULT_LIMITS },
    auth: null,
    network: {
      allow: [],
      rangeSources: [],
      refreshIntervalMs: 12 * 3_600_000,
      protectMetadata: false,
    },
    admin: defaultAdmin({ hostname: "127.0.0.1", port: 8080 })!,
    store: null,
  };
}

/** The demo only ever listens on loopback. */
function checkDemoListen(text: string) {
  const listen = parseHostPort(text);
  if (!listen) throw new ConfigError([`--listen: ${hostPortProblem(text)}`]);
  if (!isLoopbackHost(listen.hostname)) {
    throw new ConfigError([
      `--listen: the demo only listens on a loopback address, not "${listen.hostname}"`,
    ]);
  }
  return listen;
}

/** Path of the bundled demo server script. */
export function demoServerPath(): string {
  return decodeURIComponent(new URL("../../examples/demo-server.ts", import.meta.url).pathname);
}
