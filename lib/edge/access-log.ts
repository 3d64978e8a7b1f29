/**
 * The access log: one JSON line per request. It holds the route class, never the raw path or
 * query, and never tokens, codes, secrets, cookies or tool arguments.
 */
import { stderrLine } from "../log.ts";

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
}

export interface AccessEntry extends RequestNote {
  time: string;
  ip: string;
  peer?: string;
  method: string;
  route: string;
  status: number;
  ms: number;
}

/** A writer of access-log lines (stderr by default). */
export function createAccessLog(
  write: (line: string) => void = stderrLine,
): (entry: AccessEntry) => void {
  return (entry) => write(JSON.stringify({ type: "access", ...entry }) + "\n");
}
