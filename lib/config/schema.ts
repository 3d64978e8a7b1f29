/**
 * The config file's shape: the Claude Desktop `mcpServers` map plus the proxy's own keys.
 * `parseConfig` turns the parsed JSON (after `${VAR}` substitution) into a normalised `Config`.
 */
import { parseStore, type PostgresSettings } from "./store-schema.ts";
import {
  boolean,
  Checker,
  duration,
  integer,
  type JsonObject,
  keyPath,
  knownKeys,
  object,
  oneOf,
  string,
  stringArray,
  stringMap,
} from "./check.ts";
import { absolutePath } from "./paths.ts";
import { hostPortProblem, isLoopbackHost, type Listen, parseHostPort } from "./hosts.ts";
import { type AdminSettings, parseAdmin } from "./admin-schema.ts";
import { LOG_KEYS, type LogSettings, parseLogSettings } from "./log-schema.ts";
import {
  type AllowList,
  AUTH_KEYS,
  type AuthConfig,
  parseAuth,
  parseServerAllow,
} from "./auth-schema.ts";
import { type NetworkSettings, parseNetwork } from "./network-schema.ts";
import { type Limits, parseLimits } from "./limits-schema.ts";
import { parsePolicy, POLICY_KEYS } from "./policy-schema.ts";
import type { PolicyRules } from "../policy/policy.ts";
import { type MergedSettings, parseMerged } from "./merged-schema.ts";
import { type InstancesSettings, parseInstances } from "./instances-schema.ts";

export const SERVER_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const MODES = ["per-user", "per-session", "shared"] as const;
export type Mode = typeof MODES[number];

export interface ServerConfig {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  mode: Mode;
  /** Idle time after which a child is stopped; 0 keeps it running. */
  idleTimeoutMs: number;
  requestTimeoutMs: number;
  maxInFlight: number;
  /** First restart delay after an exit; doubles per exit within a minute, up to 60 s. */
  restartDelayMs: number;
  /** Put tool arguments in the audit log (off: arguments may hold personal data). */
  logArguments: boolean;
  /**
   * Children kept ready through idle periods: shared and per-user children are not stopped by
   * the idle timeout while this is above 0; per-session servers keep this many spare children
   * initialized for the next new session.
   */
  warm: number;
  /**
   * Freshness hint (`ttlMs`) on the lists and resource reads answered to MCP 2026-07-28 clients;
   * absent means 0 (the answer may be reused only after revalidation).
   */
  cacheTtlMs?: number;
  /**
   * How long a MCP 2026-07-28 client has to answer an input request (the expiry of its
   * `requestState`); absent means 5 minutes.
   */
  inputTimeoutMs?: number;
  /**
   * Which tools, prompts and resources of the child are shown and let through (`tools`,
   * `prompts`, `resources`, `readOnly`); absent shows everything.
   */
  policy?: PolicyRules;
  /**
   * Who may use this server, narrowing the global allow-list (login only); absent means
   * everyone the global allow-list admits.
   */
  allow?: AllowList;
}

export type { Listen };
export { DEFAULT_LIMITS, type Limits, type Rate } from "./limits-schema.ts";

export interface Config {
  /** Absolute path of the config file, or null for the embedded demo. */
  source: string | null;
  demo: boolean;
  listen: Listen;
  dataDir: string;
  servers: ServerConfig[];
  allowedOrigins: string[];
  legacySse: boolean;
  logLevel: "debug" | "info" | "warn" | "error";
  /** `logFormat` and `accessLog`. */
  log: LogSettings;
  limits: Limits;
  /** GitHub login and the OAuth server; null serves loopback only, without login. */
  auth: AuthConfig | null;
  network: NetworkSettings;
  /** The loopback listener of the owner's endpoints. */
  admin: AdminSettings;
  /** The merged endpoint `/mcp` (absent: off). */
  merged?: MergedSettings;
  /** Several instances behind one public URL; absent: this proxy is the only one. */
  instances?: InstancesSettings;
  /** A PostgreSQL store shared by several instances; null keeps state in `dataDir` (Deno KV). */
  store: PostgresSettings | null;
}

export const SERVER_DEFAULTS = {
  mode: "per-user" as Mode,
  idleTimeoutMs: 10 * 60_000,
  requestTimeoutMs: 120_000,
  maxInFlight: 32,
  restartDelayMs: 1000,
  warm: 1,
};

const TOP_KEYS = [
  "$schema",
  "listen",
  "dataDir",
  "mcpServers",
  "allowedOrigins",
  "legacySse",
  "logLevel",
  ...LOG_KEYS,
  "limits",
  "network",
  "admin",
  "merged",
  "instances",
  "store",
  ...AUTH_KEYS,
] as const;
const SERVER_KEYS = [
  "command",
  "args",
  "env",
  "cwd",
  "mode",
  "disabled",
  "type",
  "url",
  "idleTimeout",
  "requestTimeout",
  "maxInFlight",
  "restartDelay",
  "logArguments",
  "warm",
  "cacheTtl",
  "inputTimeout",
  ...POLICY_KEYS,
  "allow",
] as const;
/** Keys that other MCP clients put in the same file; understood and ignored. */
const CLIENT_SIDE_KEYS = [
  "autoApprove",
  "alwaysAllow",
  "timeout",
  "disabledTools",
  "transportType",
];
/** Claude Desktop's own top-level settings: a whole claude_desktop_config.json is accepted. */
const CLAUDE_DESKTOP_KEYS = [
  "globalShortcut",
  "preferences",
  "isUsingBuiltInNodeForMcp",
  "isDxtAutoUpdatesEnabled",
];
const HOUR = 3_600_000;

export interface ParseOptions {
  source: string | null;
  /** Directory relative paths (dataDir, cwd) are resolved against. */
  baseDir: string;
}

/** Validates a parsed config document; throws ConfigError listing every problem. */
export function parseConfig(raw: unknown, options: ParseOptions, ck = new Checker()): Config {
  const root = object(ck, raw, "") ?? (raw === undefined ? {} : undefined);
  if (!root) {
    ck.throwIfFailed();
    throw new Error("unreachable");
  }
  knownKeys(ck, root, "", TOP_KEYS, CLAUDE_DESKTOP_KEYS);

  const listen = parseListen(ck, root);
  const dataDir = absolutePath(
    options.baseDir,
    string(ck, root, "dataDir", "", { nonEmpty: true }) ?? "./data",
  );
  const servers = parseServers(ck, root, options.baseDir);
  const allowedOrigins = (stringArray(ck, root, "allowedOrigins", "") ?? []).flatMap((o, i) => {
    const origin = canonicalOrigin(o);
    if (!origin) {
      ck.fail(keyPath("allowedOrigins", i), `expected an origin such as "http://localhost:6274"`);
      return [];
    }
    return [origin];
  });
  const legacySse = boolean(ck, root, "legacySse", "") ?? true;
  const logLevel = oneOf(ck, root, "logLevel", "", ["debug", "info", "warn", "error"] as const) ??
    "info";
  const log = parseLogSettings(ck, root, options.baseDir);
  const limits = parseLimits(ck, root);
  const auth = parseAuth(ck, root);
  const network = parseNetwork(ck, root);
  const admin = parseAdmin(ck, root, listen);
  const merged = parseMerged(ck, root);
  const instances = parseInstances(ck, root, { listen, admin: admin?.listen });
  const store = parseStore(ck, root);
  if (instances && root.store === undefined) {
    ck.fail(
      "instances",
      `several instances share one store: add "store": { "url": "\${DATABASE_URL}" } ` +
        `(PostgreSQL); the Deno KV file in dataDir serves one instance only`,
    );
  }

  if (root.github === undefined) {
    for (const s of servers.filter((s) => s.allow)) {
      ck.fail(
        keyPath(keyPath("mcpServers", s.name), "allow"),
        `only used with login: add a "github" section`,
      );
    }
  }
  if (listen && !auth && !isLoopbackHost(listen.hostname)) {
    ck.fail(
      "listen",
      `"${listen.hostname}" is not a loopback address. Without login configured the proxy only ` +
        `serves 127.0.0.1, ::1 or localhost, so nothing on the network can reach your servers. ` +
        `Configure "github" login to listen elsewhere.`,
    );
  }
  ck.throwIfFailed();
  return {
    source: options.source,
    demo: false,
    listen: listen!,
    dataDir,
    servers,
    allowedOrigins,
    legacySse,
    logLevel,
    log,
    limits,
    auth,
    network,
    admin: admin!,
    merged,
    ...(instances ? { instances } : {}),
    store: store ?? null,
  };
}

function parseListen(ck: Checker, root: JsonObject): Listen | undefined {
  const text = string(ck, root, "listen", "") ?? "127.0.0.1:8080";
  const parsed = parseHostPort(text);
  if (!parsed) return ck.fail("listen", hostPortProblem(text));
  return parsed;
}

export { hostPortProblem, isLoopbackHost, parseHostPort };

function parseServers(ck: Checker, root: JsonObject, baseDir: string): ServerConfig[] {
  const map = object(ck, root.mcpServers, "mcpServers");
  if (root.mcpServers === undefined) {
    ck.fail("mcpServers", "required: list at least one stdio server");
    return [];
  }
  if (!map) return [];
  const servers: ServerConfig[] = [];
  for (const [name, value] of Object.entries(map)) {
    const path = keyPath("mcpServers", name);
    if (!SERVER_NAME.test(name)) {
      ck.fail(path, "server names use lower-case letters, digits, '-' and '_' (at most 64)");
      continue;
    }
    const entry = object(ck, value, path);
    if (!entry) continue;
    const server = parseServer(ck, entry, path, name, baseDir);
    if (server) servers.push(server);
  }
  if (Object.keys(map).length === 0) ck.fail("mcpServers", "list at least one stdio server");
  else if (servers.length === 0 && ck.problems.length === 0) {
    ck.fail("mcpServers", "every server is disabled: nothing to serve");
  }
  return servers;
}

function parseServer(
  ck: Checker,
  entry: JsonObject,
  path: string,
  name: string,
  baseDir: string,
): ServerConfig | undefined {
  knownKeys(ck, entry, path, SERVER_KEYS, CLIENT_SIDE_KEYS);
  if (boolean(ck, entry, "disabled", path)) {
    ck.notice(path, "skipped (disabled: true)");
    return undefined;
  }
  const type = string(ck, entry, "type", path);
  if (type !== undefined && type !== "stdio") {
    ck.fail(keyPath(path, "type"), `"${type}" servers are not bridged: only stdio servers are`);
  }
  if (entry.url !== undefined) {
    ck.fail(keyPath(path, "url"), "remote servers are not bridged: only stdio servers (command)");
  }
  const command = string(ck, entry, "command", path, {
    required: entry.url === undefined,
  });
  const args = stringArray(ck, entry, "args", path) ?? [];
  const env = stringMap(ck, entry, "env", path) ?? {};
  const cwdText = string(ck, entry, "cwd", path, { nonEmpty: true });
  const mode = oneOf(ck, entry, "mode", path, MODES) ?? SERVER_DEFAULTS.mode;
  const idleTimeoutMs = duration(ck, entry, "idleTimeout", path, { min: 0, max: 7 * 24 * HOUR }) ??
    SERVER_DEFAULTS.idleTimeoutMs;
  const requestTimeoutMs =
    duration(ck, entry, "requestTimeout", path, { min: 1000, max: 24 * HOUR }) ??
      SERVER_DEFAULTS.requestTimeoutMs;
  const maxInFlight = integer(ck, entry, "maxInFlight", path, { min: 1, max: 10_000 }) ??
    SERVER_DEFAULTS.maxInFlight;
  const restartDelayMs = duration(ck, entry, "restartDelay", path, { min: 10, max: 60_000 }) ??
    SERVER_DEFAULTS.restartDelayMs;
  const cacheTtlMs = duration(ck, entry, "cacheTtl", path, { min: 0, max: 24 * HOUR });
  const inputTimeoutMs = duration(ck, entry, "inputTimeout", path, { min: 1000, max: 24 * HOUR });
  const policy = parsePolicy(ck, entry, path);
  const allow = parseServerAllow(ck, entry, path);
  if (command === undefined) return undefined;
  return {
    name,
    command,
    args,
    env,
    cwd: cwdText === undefined ? undefined : absolutePath(baseDir, cwdText),
    mode,
    idleTimeoutMs,
    requestTimeoutMs,
    maxInFlight,
    restartDelayMs,
    logArguments: boolean(ck, entry, "logArguments", path) ?? false,
    warm: integer(ck, entry, "warm", path, { min: 0, max: 32 }) ?? SERVER_DEFAULTS.warm,
    ...(cacheTtlMs === undefined ? {} : { cacheTtlMs }),
    ...(inputTimeoutMs === undefined ? {} : { inputTimeoutMs }),
    ...(policy === undefined ? {} : { policy }),
    ...(allow === undefined ? {} : { allow }),
  };
}

/** Lower-cased scheme://host[:port] with the default port dropped, or null. */
export function canonicalOrigin(text: string): string | null {
  try {
    const url = new URL(text);
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    if (url.pathname !== "/" || url.search || url.hash || url.username) return null;
    return url.origin;
  } catch {
    return null;
  }
}
