/**
 * Small validation helpers for the config file: every error names its key path
 * (`mcpServers.files.args[1]: expected a string`), and unknown keys suggest the nearest known one.
 */
import { isRecord } from "../jsonrpc.ts";

/** One or more config mistakes, each already prefixed with its key path. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}

/** A bad `network.*` setting; `path` is the config key path, e.g. `network.allow[2]`. */
export class NetworkConfigError extends Error {
  override name = "NetworkConfigError";
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
  }
}

/** A bad `oauth.*` setting; `path` is the config key path, e.g. `oauth.redirectUris[2]`. */
export class OAuthConfigError extends Error {
  override name = "OAuthConfigError";
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
  }
}

/** Collects problems and notices while a config is read, so every mistake is reported at once. */
export class Checker {
  readonly problems: string[] = [];
  readonly notices: string[] = [];

  fail(path: string, message: string): undefined {
    this.problems.push(path ? `${path}: ${message}` : message);
    return undefined;
  }

  notice(path: string, message: string): void {
    this.notices.push(path ? `${path}: ${message}` : message);
  }

  /** Throws a ConfigError when anything failed. */
  throwIfFailed(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}

export type JsonObject = Record<string, unknown>;

/** Joins a key onto a path the way people write it: `a.b`, `a[1]`, `a["odd key"]`. */
export function keyPath(base: string, key: string | number): string {
  if (typeof key === "number") return `${base}[${key}]`;
  const plain = /^[A-Za-z_$][\w$-]*$/.test(key);
  if (!plain) return `${base}[${JSON.stringify(key)}]`;
  return base ? `${base}.${key}` : key;
}

/** Describes a JSON value's type for error messages. */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/** Returns the object at `path` or records "expected an object". */
export function object(ck: Checker, value: unknown, path: string): JsonObject | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) return ck.fail(path, `expected an object, got ${typeName(value)}`);
  return value;
}

/** Records every key of `obj` not in `known`, suggesting the closest known key. */
export function knownKeys(
  ck: Checker,
  obj: JsonObject,
  path: string,
  known: readonly string[],
  ignored: readonly string[] = [],
): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    if (ignored.includes(key)) {
      ck.notice(keyPath(path, key), "ignored (a client-side setting the proxy does not use)");
      continue;
    }
    const near = nearest(key, known);
    ck.fail(keyPath(path, key), `unknown key${near ? ` (did you mean "${near}"?)` : ""}`);
  }
}

export function string(
  ck: Checker,
  obj: JsonObject,
  key: string,
  path: string,
  options: { required?: boolean; pattern?: RegExp; patternHint?: string; nonEmpty?: boolean } = {},
): string | undefined {
  const value = obj[key];
  const at = keyPath(path, key);
  if (value === undefined) {
    return options.required ? ck.fail(at, "required") : undefined;
  }
  if (typeof value !== "string") return ck.fail(at, `expected a string, got ${typeName(value)}`);
  if ((options.nonEmpty || options.required) && value.length === 0) {
    return ck.fail(at, "must not be empty");
  }
  if (options.pattern && !options.pattern.test(value)) {
    return ck.fail(at, options.patternHint ?? `must match ${options.pattern}`);
  }
  return value;
}

export function boolean(
  ck: Checker,
  obj: JsonObject,
  key: string,
  path: string,
): boolean | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") {
    return ck.fail(keyPath(path, key), `expected true or false, got ${typeName(value)}`);
  }
  return value;
}

export function integer(
  ck: Checker,
  obj: JsonObject,
  key: string,
  path: string,
  range: { min: number; max: number },
): number | undefined {
  const value = obj[key];
  const at = keyPath(path, key);
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    return ck.fail(at, `expected a whole number, got ${typeName(value)}`);
  }
  if (value < range.min || value > range.max) {
    return ck.fail(at, `must be between ${range.min} and ${range.max}`);
  }
  return value;
}

export function oneOf<T extends string>(
  ck: Checker,
  obj: JsonObject,
  key: string,
  path: string,
  choices: readonly T[],
): T | undefined {
  const value = obj[key];
  const at = keyPath(path, key);
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !choices.includes(value as T)) {
    return ck.fail(at, `expected one of ${choices.map((c) => `"${c}"`).join(", ")}`);
  }
  return value as T;
}

export function stringArray(
  ck: Checker,
  obj: JsonObject,
  key: string,
  path: string,
): string[] | undefined {
  const value = obj[key];
  const at = keyPath(path, key);
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    return ck.fail(at, `expected an array of strings, got ${typeName(value)}`);
  }
  const out: string[] = [];
  value.forEach((item, i) => {
    if (typeof item !== "string") {
      ck.fail(keyPath(at, i), `expected a string, got ${typeName(item)}`);
    } else out.push(item);
  });
  return out;
}

export function stringMap(
  ck: Checker,
  obj: JsonObject,
  key: string,
  path: string,
): Record<string, string> | undefined {
  const at = keyPath(path, key);
  const value = object(ck, obj[key], at);
  if (!value) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") ck.fail(keyPath(at, k), `expected a string, got ${typeName(v)}`);
    else out[k] = v;
  }
  return out;
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses "90s", "10m", "24h", "30d", "250ms" (or a number of seconds) into milliseconds. */
export function parseDuration(text: string | number): number | null {
  if (typeof text === "number") return Number.isFinite(text) && text >= 0 ? text * 1000 : null;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]]);
}

export function duration(
  ck: Checker,
  obj: JsonObject,
  key: string,
  path: string,
  range: { min: number; max: number },
): number | undefined {
  return measured(ck, obj[key], keyPath(path, key), range, {
    parse: parseDuration,
    expected: `a duration such as "90s", "10m", "24h" or "30d"`,
    format: formatDuration,
  });
}

/** Reads a quantity written with units, checking it parses and lies within `range`. */
function measured(
  ck: Checker,
  value: unknown,
  at: string,
  range: { min: number; max: number },
  unit: { parse(v: string | number): number | null; expected: string; format(n: number): string },
): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === "string" || typeof value === "number" ? unit.parse(value) : null;
  if (n === null) return ck.fail(at, `expected ${unit.expected}`);
  if (n < range.min || n > range.max) {
    return ck.fail(at, `must be between ${unit.format(range.min)} and ${unit.format(range.max)}`);
  }
  return n;
}

/** Formats milliseconds in the largest whole unit, for messages and the README. */
export function formatDuration(ms: number): string {
  for (
    const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const
  ) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Parses "4MiB", "512KiB", "100B" (or a number of bytes). */
export function parseSize(text: string | number): number | null {
  if (typeof text === "number") return Number.isInteger(text) && text > 0 ? text : null;
  const m = /^(\d+)(B|KiB|MiB|GiB)$/.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * SIZE_UNITS[m[2]];
}

export function size(
  ck: Checker,
  obj: JsonObject,
  key: string,
  path: string,
  range: { min: number; max: number },
): number | undefined {
  return measured(ck, obj[key], keyPath(path, key), range, {
    parse: parseSize,
    expected: `a size such as "4MiB", "512KiB" or a number of bytes`,
    format: (n) => `${n} bytes`,
  });
}

/** The known word closest to `word` by edit distance, if close enough to be a likely typo. */
export function nearest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}
