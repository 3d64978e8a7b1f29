/**
 * The proxy's log: one line per event on stderr, `time level message key=value…`.
 * Callers pass only what may be shown: tokens, secrets and tool arguments never reach here.
 * Lines go through a bounded asynchronous queue (lib/log-queue.ts): a stderr that nobody reads
 * costs dropped lines, never a blocked process.
 */
import { LogQueue } from "./log-queue.ts";

export type Level = "debug" | "info" | "warn" | "error";
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  enabled(level: Level): boolean;
}

let stderrQueue: LogQueue | undefined;

/** The process's stderr, behind the shared bounded queue. */
export function stderrLine(line: string): void {
  stderrQueue ??= new LogQueue((bytes) => Deno.stderr.write(bytes), {
    report: (count) =>
      `${
        new Date().toISOString()
      } warn  ${count} log lines dropped (stderr was not read in time)\n`,
  });
  stderrQueue.push(line);
}

/** Log lines dropped so far because stderr was not read in time. */
export function droppedLogLines(): number {
  return stderrQueue?.dropped ?? 0;
}

/** Writes out queued log lines, waiting at most `ms`. */
export async function flushLogs(ms: number): Promise<void> {
  await stderrQueue?.flush(ms);
}

/** Creates a logger writing lines at or above `level` through `write` (stderr by default). */
export function createLogger(
  options: { level?: Level; write?: (line: string) => void; now?: () => Date } = {},
): Logger {
  const min = RANK[options.level ?? "info"];
  const write = options.write ?? stderrLine;
  const now = options.now ?? (() => new Date());
  const emit = (level: Level, message: string, fields?: Fields) => {
    if (RANK[level] < min) return;
    let line = `${now().toISOString()} ${level.padEnd(5)} ${message}`;
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        if (value === undefined) continue;
        line += ` ${key}=${formatValue(value)}`;
      }
    }
    write(line + "\n");
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    enabled: (level) => RANK[level] >= min,
  };
}

function formatValue(value: string | number | boolean | null): string {
  if (typeof value !== "string") return String(value);
  return /^[\w.:/@+-]+$/.test(value) ? value : JSON.stringify(value);
}

/** A logger that drops everything, for tests of modules that take one. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  enabled: () => false,
};
