/**
 * The log's settings besides `logLevel`: `logFormat` (text for people, JSON Lines for machines)
 * and `accessLog` (where the one-line-per-request log goes: stderr with the rest, a file of its
 * own, or nowhere).
 */
import { type Checker, type JsonObject, oneOf, string } from "./check.ts";
import { absolutePath } from "./paths.ts";
import { LOG_FORMATS, type LogFormat } from "../log.ts";

/** Where the access log goes. */
export type AccessLogTarget = { to: "off" } | { to: "stderr" } | { to: "file"; path: string };

export interface LogSettings {
  logFormat: LogFormat;
  accessLog: AccessLogTarget;
}

export const LOG_KEYS = ["logFormat", "accessLog"] as const;

/** Reads `logFormat` and `accessLog`; a relative file path is resolved against `baseDir`. */
export function parseLogSettings(ck: Checker, root: JsonObject, baseDir: string): LogSettings {
  const logFormat = oneOf(ck, root, "logFormat", "", LOG_FORMATS) ?? "text";
  const text = string(ck, root, "accessLog", "", { nonEmpty: true }) ?? "stderr";
  let accessLog: AccessLogTarget;
  if (text === "off" || text === "stderr") accessLog = { to: text };
  else if (text.includes("/")) accessLog = { to: "file", path: absolutePath(baseDir, text) };
  else {
    // A bare word is more likely a typo ("of", "stdout") than a file in the config's folder.
    ck.fail(
      "accessLog",
      `expected "off", "stderr" or a file path such as "./access.log", got "${text}"`,
    );
    accessLog = { to: "stderr" };
  }
  return { logFormat, accessLog };
}
