/**
 * The access log: one line per request, in the log's format (`accessLog` sends it to stderr, a
 * file, or nowhere). It holds the route class, never the raw path or query, and never tokens,
 * codes, secrets, cookies or tool arguments.
 */
import type { Logger } from "../log.ts";

/** What the handlers learned about a request, for its access-log line. */
export interface RequestNote {
  user_id?: number;
  login?: string;
  client_id?: string;
  server?: string;
  /** The JSON-RPC method of an MCP request (the first one of a batch). */
  rpc?: string;
  /** The tool name of a `tools/call`. */
  tool?: string;
  /** The instance a request was forwarded to (several instances), or that forwarded it here. */
  instance?: string;
}

export interface AccessEntry extends RequestNote {
  ip: string;
  peer?: string;
  method: string;
  route: string;
  status: number;
  ms: number;
}

/** A writer of access-log lines: records of type `access`, at info level. */
export function createAccessLog(log: Logger): (entry: AccessEntry) => void {
  return (entry) => log.record("access", { ...entry });
}
