/**
 * HTTP helpers of the MCP transports: reading a JSON-RPC POST, JSON-RPC error replies and Accept
 * negotiation.
 */
import { BodyTimeout, BodyTooLarge, mediaType, readBody } from "../http.ts";
import {
  classify,
  errorBody,
  ErrorCode,
  isRecord,
  isValidId,
  type JsonRpcId,
  type Kind,
  NOT_JSON,
  parseJson,
  requestId,
} from "../jsonrpc.ts";
import type { Limits, ServerConfig } from "../config/schema.ts";
import type { Identity } from "../router/router.ts";
import type { RequestNote } from "../edge/access-log.ts";
import { UnavailableError } from "../children/lifecycle.ts";

export { mediaType, readBody } from "../http.ts";

/** The response to a body that could not be read: too large (413), too slow (408), or broken. */
export function bodyError(error: unknown): Response {
  if (error instanceof BodyTooLarge) {
    return rpcError(413, null, ErrorCode.InvalidRequest, `message over ${error.limit} bytes`);
  }
  if (error instanceof BodyTimeout) {
    return rpcError(
      408,
      null,
      ErrorCode.InvalidRequest,
      "the request body was not received in time",
    );
  }
  return rpcError(400, null, ErrorCode.ParseError, "could not read the request body");
}

/** One authenticated request to an MCP endpoint, as the transports receive it. */
export interface McpCall {
  req: Request;
  server: ServerConfig;
  identity: Identity;
  /** What the transport learns, for the access log. */
  note: RequestNote;
  /**
   * Where the request would go if another instance owns it: its path as the owner matches it
   * and the client's address. Absent on a request another instance already forwarded here.
   */
  forwardable?: { path: string; clientIp: string };
}

const JSON_HEADERS = { "content-type": "application/json" };

/** A JSON response with the given status. */
export function jsonResponse(
  body: string,
  status = 200,
  headers?: Record<string, string>,
): Response {
  return new Response(body, {
    status,
    headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS,
  });
}

const NOT_FOUND = JSON.stringify({ error: "not_found" });

/**
 * The same 404 for every unknown path, and for a server the caller may not use, so nothing is
 * learned from probing.
 */
export function notFound(): Response {
  return jsonResponse(NOT_FOUND, 404);
}

/** An HTTP error carrying a JSON-RPC error body. */
export function rpcError(
  status: number,
  id: JsonRpcId | null,
  code: number,
  message: string,
  options: { data?: unknown; headers?: Record<string, string> } = {},
): Response {
  return jsonResponse(errorBody(id, code, message, options.data), status, options.headers);
}

/** What a client's Accept header lets the server answer with. */
export function acceptance(header: string | null): { json: boolean; sse: boolean } {
  if (!header) return { json: true, sse: false };
  const types = header.split(",").map((part) => mediaType(part));
  const any = types.includes("*/*");
  return {
    json: any || types.includes("application/json") || types.includes("application/*"),
    sse: types.includes("text/event-stream"),
  };
}

/**
 * Reads and parses a JSON-RPC POST body: 415 unless `Content-Type: application/json`, then the
 * body errors of `bodyError`, then 400 / -32700 for text that is not JSON.
 */
export async function readJsonBody(
  req: Request,
  maxBytes: number,
  timeoutMs: number,
): Promise<{ value: unknown } | Response> {
  if (mediaType(req.headers.get("content-type")) !== "application/json") {
    return rpcError(415, null, ErrorCode.InvalidRequest, "Content-Type must be application/json");
  }
  let text: string;
  try {
    text = await readBody(req, maxBytes, timeoutMs);
  } catch (error) {
    return bodyError(error);
  }
  try {
    return { value: JSON.parse(text) };
  } catch {
    return rpcError(400, null, ErrorCode.ParseError, "parse error: the body is not valid JSON");
  }
}

/** One valid message of a POST body with its kind, classified once. */
export interface Classified {
  kind: Exclude<Kind, "invalid">;
  message: Record<string, unknown>;
}

/**
 * A JSON-RPC POST body as read by both 2025-era transports: the parsed body and its messages,
 * each classified once (JSON-RPC 2.0 §4–§6). Each transport asks for the refusals in its order.
 */
export class JsonRpcPost {
  /** The id of the request being refused, echoed by errors about the whole POST (§5). */
  readonly id: JsonRpcId | null;
  readonly batch: boolean;
  /** The messages when all are valid (empty when the body is not JSON or holds an invalid one). */
  readonly messages: Classified[] = [];
  #invalid: unknown = undefined;

  constructor(readonly body: unknown, readonly contentType: string | null) {
    this.id = requestId(body);
    this.batch = Array.isArray(body);
    if (body === NOT_JSON) return;
    for (const message of this.batch ? body as unknown[] : [body]) {
      const kind = classify(message);
      if (kind === "invalid") {
        this.#invalid = message;
        this.messages.length = 0;
        return;
      }
      this.messages.push({ kind, message: message as Record<string, unknown> });
    }
  }

  /** 415 unless `Content-Type: application/json` (MCP Transports § "Sending Messages"). */
  mediaError(): Response | null {
    if (mediaType(this.contentType) === "application/json") return null;
    return rpcError(
      415,
      this.id,
      ErrorCode.InvalidRequest,
      "Content-Type must be application/json",
    );
  }

  /** 400 for text that is not JSON (-32700), an empty batch or an invalid message (-32600). */
  shapeError(): Response | null {
    if (this.body === NOT_JSON) {
      return rpcError(400, null, ErrorCode.ParseError, "parse error: the body is not valid JSON");
    }
    if (this.#invalid !== undefined) {
      const m = this.#invalid;
      const bad = isRecord(m) && isValidId(m.id) ? m.id : null;
      return rpcError(400, bad, ErrorCode.InvalidRequest, "invalid JSON-RPC 2.0 message");
    }
    if (this.messages.length === 0) {
      return rpcError(400, null, ErrorCode.InvalidRequest, "empty batch");
    }
    return null;
  }
}

/**
 * Reads a JSON-RPC POST body within `limits.maxMessageInBytes` and `limits.bodyTimeoutMs`, or the
 * response to a body that could not be read (`bodyError`). The body is read before anything is
 * checked, so that every later refusal can echo the request's id (JSON-RPC 2.0 §5).
 */
export async function readJsonRpc(
  req: Request,
  limits: Pick<Limits, "maxMessageInBytes" | "bodyTimeoutMs">,
): Promise<JsonRpcPost | Response> {
  let text: string;
  try {
    text = await readBody(req, limits.maxMessageInBytes, limits.bodyTimeoutMs);
  } catch (error) {
    return bodyError(error);
  }
  return new JsonRpcPost(parseJson(text), req.headers.get("content-type"));
}

/**
 * Maps a child start-up failure to the response the client sees: 503 with Retry-After when no
 * child or session may start now (RFC 9110 §15.6.4, §10.2.3), else a JSON-RPC internal error.
 */
export function childError(error: unknown, id: JsonRpcId | null): Response {
  if (error instanceof UnavailableError) {
    return rpcError(503, id, ErrorCode.InternalError, error.message, {
      headers: { "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) },
    });
  }
  return rpcError(200, id, ErrorCode.InternalError, (error as Error).message);
}
