/**
 * The proxy's log: one line per event, every line with its time and level. Two formats:
 * - `text` (the default), for people: `2026-01-02T03:04:05.678Z info  message key=value …`;
 *   a value is written bare when it is a plain word and could not be read as a number, `true`,
 *   `false` or `null`, else as a JSON string, so every line parses back unambiguously
 *   (the logfmt convention, https://brandur.org/logfmt);
 * - `json`, for machines: one JSON object per line (JSON Lines, https://jsonlines.org/),
 *   `{"time":…,"level":…,"msg":…,…}`; records (access, audit) lead with `"type"` instead of `msg`.
 * Callers pass only what may be shown: tokens, secrets and tool arguments never reach here.
 * Lines go through a bounded asynchronous queue (lib/log-queue.ts): a stderr that nobody reads
 * costs dropped lines, never a blocked process.
 */
import { LogQueue } from "./log-queue.ts";

export type Level = "debug" | "info" | "warn" | "error";
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = typeof LOG_FORMATS[number];

export type Fields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  /**
   * A record (an access or audit line) at info level: `type` is its message in text and its
   * `"type"` key in JSON; values that are not plain (objects, arrays) are written as JSON.
   */
  record(type: string, fields: Record<string, unknown>): void;
  enabled(level: Level): boolean;
}

export interface LogOptions {
  /** Lines below this level are dropped (default info). */
  level?: Level;
  format?: LogFormat;
  /** Where lines go (stderr, through the shared queue, by default). */
  write?: (line: string) => void;
  now?: () => Date;
}

const queues = new Set<LogQueue>();
let stderrQueue: LogQueue | undefined;
/** The format of the "lines dropped" report on stderr: that of the last stderr logger made. */
let stderrFormat: LogFormat = "text";

/** A bounded queue in front of `output`, counted in droppedLogLines and flushed by flushLogs. */
export function queuedOutput(
  output: (bytes: Uint8Array) => Promise<number>,
  what: string,
): LogQueue {
  const queue = new LogQueue(output, {
    report: (count) =>
      formatLine(stderrFormat, new Date(), "warn", `${count} log lines dropped`, {
        reason: `${what} was not read in time`,
        dropped: count,
      }),
  });
  queues.add(queue);
  return queue;
}

/** The process's stderr, behind the shared bounded queue. */
export function stderrLine(line: string): void {
  stderrQueue ??= queuedOutput((bytes) => Deno.stderr.write(bytes), "stderr");
  stderrQueue.push(line);
}

/** Appends lines to the file at `path` (created with mode 0640) through a bounded queue. */
export async function logFile(path: string): Promise<(line: string) => void> {
  const file = await Deno.open(path, { append: true, create: true, mode: 0o640 });
  const queue = queuedOutput((bytes) => file.write(bytes), path);
  return (line) => void queue.push(line);
}

/** Log lines dropped so far because their output was not read in time. */
export function droppedLogLines(): number {
  let total = 0;
  for (const queue of queues) total += queue.dropped;
  return total;
}

/** Writes out queued log lines, waiting at most `ms`. */
export async function flushLogs(ms: number): Promise<void> {
  await Promise.all([...queues].map((queue) => queue.flush(ms)));
}

/** Creates a logger writing lines at or above `level` through `write` (stderr by default). */
export function createLogger(options: LogOptions = {}): Logger {
  const min = RANK[options.level ?? "info"];
  const format = options.format ?? "text";
  if (!options.write) stderrFormat = format;
  const write = options.write ?? stderrLine;
  const now = options.now ?? (() => new Date());
  const emit = (level: Level, message: string, fields?: Fields) => {
    if (RANK[level] >= min) write(formatLine(format, now(), level, message, fields));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    record: (type, fields) => {
      if (RANK.info >= min) write(formatLine(format, now(), "info", type, fields, true));
    },
    enabled: (level) => RANK[level] >= min,
  };
}

/** One line (with its newline) in `format`. */
export function formatLine(
  format: LogFormat,
  time: Date,
  level: Level,
  message: string,
  fields: Record<string, unknown> = {},
  isRecord = false,
): string {
  if (format === "json") {
    const head = isRecord
      ? { type: message, time: time.toISOString(), level }
      : { time: time.toISOString(), level, msg: message };
    const body: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined && !(key in head)) body[key] = value;
    }
    return JSON.stringify({ ...head, ...body }) + "\n";
  }
  // Built in one array of the right size, joined once: on the request path (an access and an
  // audit line per call) this allocates a fraction of what a chain of `+=` did.
  const keys = Object.keys(fields);
  const parts: string[] = new Array(6 + 4 * keys.length);
  parts[0] = time.toISOString();
  parts[1] = " ";
  parts[2] = PADDED[level];
  parts[3] = " ";
  parts[4] = message;
  let at = 5;
  for (const key of keys) {
    const value = fields[key];
    if (value === undefined) continue;
    parts[at++] = " ";
    parts[at++] = key;
    parts[at++] = "=";
    parts[at++] = formatValue(value);
  }
  parts[at] = "\n";
  return parts.join("");
}

/** Each level padded to the width of the longest, as the text format aligns them. */
const PADDED: Record<Level, string> = {
  debug: "debug",
  info: "info ",
  warn: "warn ",
  error: "error",
};

/** A text-format value: bare when it reads back as the same string, else a JSON string. */
function formatValue(value: unknown): string {
  if (typeof value === "number" || typeof value === "boolean" || value === null) {
    return String(value);
  }
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return /^[\w.:/@+-]+$/.test(text) && !AMBIGUOUS.test(text) ? text : JSON.stringify(text);
}

/** Bare words that would read back as something other than a string: numbers and literals. */
const AMBIGUOUS = /^(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|true|false|null)$/i;

/** A logger that drops everything, for tests of modules that take one. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  record() {},
  enabled: () => false,
};
