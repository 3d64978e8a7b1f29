/**
 * Reads the proxy's log back, in either format: `text` (`time level message key=value…`, values
 * bare or JSON strings) and `json` (one object per line). Records (access, audit) come back as
 * flat objects with their `type`, `time` and `level`.
 */

export interface LogLine {
  time: string;
  level: string;
  /** The message, or a record's type. */
  message: string;
  fields: Record<string, unknown>;
}

const TEXT_LINE = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (debug|info|warn|error) +(.*)$/;
const FIELDS = /^(?: [A-Za-z_][\w]*=(?:"(?:[^"\\]|\\.)*"|[^\s"]*))+$/;
const FIELD = / ([A-Za-z_][\w]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)/g;

/** One line of either format, or null when it is neither (e.g. a Deno warning). */
export function parseLogLine(line: string): LogLine | null {
  line = line.replace(/\n$/, "");
  if (line.startsWith("{")) {
    try {
      const { time, level, msg, type, ...fields } = JSON.parse(line);
      return { time, level, message: type ?? msg, fields };
    } catch {
      return null;
    }
  }
  const m = TEXT_LINE.exec(line);
  if (!m) return null;
  const [, time, level, rest] = m;
  // The message ends where the rest of the line is nothing but key=value pairs.
  let cut = rest.length;
  for (let i = rest.indexOf(" "); i !== -1; i = rest.indexOf(" ", i + 1)) {
    if (FIELDS.test(rest.slice(i))) {
      cut = i;
      break;
    }
  }
  const fields: Record<string, unknown> = {};
  for (const [, key, value] of rest.slice(cut).matchAll(FIELD)) fields[key] = parseValue(value);
  return { time, level, message: rest.slice(0, cut), fields };
}

function parseValue(text: string): unknown {
  if (text.startsWith('"')) return JSON.parse(text);
  if (/^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?$/i.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  if (text === "null") return null;
  return text;
}

/** Every record of `type` in `logs`, as `{type, time, level, ...fields}`. */
export function records<T = Record<string, unknown>>(logs: string, type: string): T[] {
  const out: T[] = [];
  for (const line of logs.split("\n")) {
    const parsed = parseLogLine(line);
    if (parsed?.message === type) {
      out.push({ type, time: parsed.time, level: parsed.level, ...parsed.fields } as T);
    }
  }
  return out;
}
