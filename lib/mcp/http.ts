/** HTTP helpers of the MCP transports: JSON-RPC error replies and Accept negotiation. */
import { BodyTimeout, BodyTooLarge, mediaType, readBody } from "../http.ts";
import { errorBody, ErrorCode, type JsonRpcId } from "../jsonrpc.ts";

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
