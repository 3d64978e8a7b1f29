/**
 * The `limits` section. Each limit is written once, in LIMITS: its key in the file, how it is
 * read and bounded, and its default; the `Limits` type, the defaults, the known keys and the
 * parser all follow from that table.
 *
 * @example
 * ```ts
 * const ck = new Checker();
 * parseLimits(ck, { limits: { maxMessageIn: "1MiB", tokenRate: "10/min" } }).tokenRate;
 * // { burst: 10, periodMs: 60000 }
 * ```
 * @module
 */
import {
  type Checker,
  duration,
  integer,
  type JsonObject,
  keyPath,
  knownKeys,
  object,
  size,
} from "./check.ts";

/** A token bucket: `burst` requests at once, refilled at `burst` per `periodMs`. */
export interface Rate {
  burst: number;
  periodMs: number;
}

/** How one limit is read from the section; undefined when absent or wrong (and reported). */
type Reader<T> = (ck: Checker, section: JsonObject, key: string) => T | undefined;

/** One limit: its key in the file, how it is read, and its value when absent. */
interface Limit<T> {
  readonly key: string;
  readonly read: Reader<T>;
  readonly fallback: T;
}

const HOUR = 3_600_000;
const MiB = 1024 * 1024;

function limit<T>(key: string, read: Reader<T>, fallback: T): Limit<T> {
  return { key, read, fallback };
}

function count(min: number, max: number): Reader<number> {
  return (ck, section, key) => integer(ck, section, key, "limits", { min, max });
}

function bytes(min: number, max: number): Reader<number> {
  return (ck, section, key) => size(ck, section, key, "limits", { min, max });
}

function ms(min: number, max: number): Reader<number> {
  return (ck, section, key) => duration(ck, section, key, "limits", { min, max });
}

/** Parses a rate such as "30/min", "5/s" or "100/h". */
const rate: Reader<Rate> = (ck, section, key) => {
  const value = section[key];
  if (value === undefined) return undefined;
  const m = typeof value === "string" ? /^(\d{1,6})\/(s|min|h)$/.exec(value.trim()) : null;
  if (!m || Number(m[1]) < 1) {
    return ck.fail(keyPath("limits", key), `expected a rate such as "30/min", "5/s" or "100/h"`);
  }
  return {
    burst: Number(m[1]),
    periodMs: { s: 1000, min: 60_000, h: HOUR }[m[2] as "s" | "min" | "h"],
  };
};

const perMinute = (burst: number): Rate => ({ burst, periodMs: 60_000 });

/** Every limit (docs/configuration.md describes each). Values are in bytes and ms. */
const LIMITS = {
  childrenPerUser: limit("childrenPerUser", count(1, 1000), 4),
  childrenTotal: limit("childrenTotal", count(1, 10_000), 32),
  maxMessageInBytes: limit("maxMessageIn", bytes(1024, 1024 ** 3), 4 * MiB),
  maxMessageOutBytes: limit("maxMessageOut", bytes(1024, 1024 ** 3), 16 * MiB),
  sessionsTotal: limit("sessionsTotal", count(1, 1_000_000), 1000),
  /** Live sessions one identity may hold; at the share its own oldest session is ended. */
  sessionsPerUser: limit("sessionsPerUser", count(1, 1_000_000), 100),
  /** Bytes of sent SSE events kept, across all sessions, for `Last-Event-ID` resumption. */
  resumeBufferBytes: limit("resumeBuffer", bytes(0, 1024 ** 3), 32 * MiB),
  sessionIdleTimeoutMs: limit("sessionIdleTimeout", ms(1000, 30 * 24 * HOUR), HOUR),
  sseKeepAliveMs: limit("sseKeepAlive", ms(1000, HOUR), 25_000),
  maxHeaderBytes: limit("maxHeaderBytes", bytes(1024, 64 * 1024), 16 * 1024),
  /** Time a client may take to send a request body. */
  bodyTimeoutMs: limit("bodyTimeout", ms(1000, HOUR), 30_000),
  /** Time a connection may stay without a request in progress (slow headers, idle keep-alive). */
  headerTimeoutMs: limit("headerTimeout", ms(1000, HOUR), 10_000),
  /** Open client connections at most (lowered at start to fit the open-file limit). */
  maxConnections: limit("maxConnections", count(1, 1_000_000), 1024),
  /** Token-bucket rates per client IP: burst and refill per minute. */
  registerRate: limit("registerRate", rate, perMinute(30)),
  tokenRate: limit("tokenRate", rate, perMinute(60)),
  authorizeRate: limit("authorizeRate", rate, perMinute(60)),
  failedAuthRate: limit("failedAuthRate", rate, perMinute(30)),
  /** IPv6 clients share rate-limit buckets per network of this many bits. */
  ipv6Prefix: limit("ipv6Prefix", count(32, 128), 64),
};

/** The `limits` section, normalised: one field per entry of LIMITS. */
export type Limits = { [F in keyof typeof LIMITS]: (typeof LIMITS)[F]["fallback"] };

const FIELDS = Object.keys(LIMITS) as (keyof Limits)[];

/** The keys `limits` accepts in the file. */
export const LIMIT_KEYS: readonly string[] = FIELDS.map((f) => LIMITS[f].key);

/** Every limit at its default. */
export const DEFAULT_LIMITS: Limits = Object.fromEntries(
  FIELDS.map((f) => [f, LIMITS[f].fallback]),
) as Limits;

/** Reads `limits`; an absent section or key keeps the default. */
export function parseLimits(ck: Checker, root: JsonObject): Limits {
  const section = object(ck, root.limits, "limits");
  if (!section) return { ...DEFAULT_LIMITS };
  knownKeys(ck, section, "limits", LIMIT_KEYS);
  const read = <F extends keyof Limits>(f: F): Limits[F] => {
    const spec = LIMITS[f] as Limit<Limits[F]>;
    return spec.read(ck, section, spec.key) ?? spec.fallback;
  };
  return Object.fromEntries(FIELDS.map((f) => [f, read(f)])) as Limits;
}
