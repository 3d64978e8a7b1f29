/**
 * MCP protocol facts the proxy needs: the revisions it speaks, version negotiation, and
 * JSON-RPC message shapes and error bodies.
 */

/** Streamable HTTP revisions served, newest first. */
export const STREAMABLE_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26"] as const;
/** Legacy HTTP+SSE clients may still initialize with the original revision. */
export const LEGACY_VERSIONS = [...STREAMABLE_VERSIONS, "2024-11-05"] as const;
export const LATEST_VERSION = STREAMABLE_VERSIONS[0];
/** The revision that dropped `initialize` and sessions; answered with a fallback error. */
export const STATELESS_ERA_VERSION = "2026-07-28";
export const META_VERSION_KEY = "io.modelcontextprotocol/protocolVersion";

export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** The connection or session ended before the answer (MCP SDK `ConnectionClosed`). */
  ConnectionClosed: -32000,
  /**
   * An HTTP-level refusal of the transport (wrong method, missing Accept or Mcp-Session-Id,
   * Origin not allowed): a code of JSON-RPC 2.0 §5.1's implementation-defined server-error range.
   */
  TransportRefused: -32000,
  RequestTimeout: -32001,
  SessionNotFound: -32001,
  RequestCancelled: -32800,
  UnsupportedProtocolVersion: -32022,
} as const;

export type JsonRpcId = string | number;

/** The version to answer an `initialize` with: the client's if we speak it, else our latest. */
export function negotiateVersion(requested: unknown, supported: readonly string[]): string {
  return typeof requested === "string" && supported.includes(requested) ? requested : supported[0];
}

/** A JSON object: not null, not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isValidId(id: unknown): id is JsonRpcId {
  return typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
}

export type Kind = "request" | "notification" | "response" | "invalid";

/** Classifies one JSON-RPC 2.0 message; anything malformed is "invalid". */
export function classify(message: unknown): Kind {
  if (typeof message !== "object" || message === null || Array.isArray(message)) return "invalid";
  const m = message as Record<string, unknown>;
  if (m.jsonrpc !== "2.0") return "invalid";
  if (typeof m.method === "string") {
    if (m.params !== undefined && (typeof m.params !== "object" || m.params === null)) {
      return "invalid";
    }
    if (!("id" in m)) return "notification";
    return isValidId(m.id) ? "request" : "invalid";
  }
  if (!isValidId(m.id)) return "invalid";
  const hasResult = "result" in m;
  const hasError = typeof m.error === "object" && m.error !== null;
  return hasResult !== hasError ? "response" : "invalid";
}

/** What `parseJson` returns for text that is not JSON. */
export const NOT_JSON: unique symbol = Symbol("not JSON");

/** Parses a request body; NOT_JSON when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

/**
 * The id an error about this body must carry (JSON-RPC 2.0 §5): the id of a single message
 * when it is a valid one, else null (not JSON, a batch, or no usable id).
 */
export function requestId(body: unknown): JsonRpcId | null {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return null;
  const id = (body as Record<string, unknown>).id;
  return isValidId(id) ? id : null;
}

/** Serialises a JSON-RPC error response. */
export function errorBody(
  id: JsonRpcId | null,
  code: number,
  message: string,
  data?: unknown,
): string {
  const error: Record<string, unknown> = { code, message };
  if (data !== undefined) error.data = data;
  return JSON.stringify({ jsonrpc: "2.0", id, error });
}

/** Serialises a JSON-RPC result response. */
export function resultBody(id: JsonRpcId, result: unknown): string {
  return JSON.stringify({ jsonrpc: "2.0", id, result });
}

/** The method's capability a client must declare to receive a server-to-client request. */
export function requiredClientCapability(
  method: string,
): "sampling" | "elicitation" | "roots" | null {
  switch (method) {
    case "sampling/createMessage":
      return "sampling";
    case "elicitation/create":
      return "elicitation";
    case "roots/list":
      return "roots";
    default:
      return null;
  }
}

export const LOG_LEVELS = [
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency",
] as const;

/** Numeric rank of an MCP log level, or -1 when unknown. */
export function logRank(level: unknown): number {
  return LOG_LEVELS.indexOf(level as typeof LOG_LEVELS[number]);
}

/** Notifications a child sends about itself that every session on it should see. */
export const BROADCAST_NOTIFICATIONS = new Set([
  "notifications/tools/list_changed",
  "notifications/prompts/list_changed",
  "notifications/resources/list_changed",
  "notifications/resources/updated",
]);
