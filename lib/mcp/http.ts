/** HTTP helpers shared by the MCP transports: bounded body reading and JSON-RPC error replies. */
import { errorBody, type JsonRpcId } from "./protocol.ts";

/** The body was larger than allowed. */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body over ${limit} bytes`);
  }
}

/** Reads a request body as text, refusing more than `max` bytes without buffering them. */
export async function readBody(req: Request, max: number): Promise<string> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    await req.body?.cancel().catch(() => {});
    throw new BodyTooLarge(max);
  }
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLarge(max);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return new TextDecoder().decode(chunks[0]);
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(all);
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

/** The media type of a Content-Type header, lower-cased, without parameters. */
export function mediaType(header: string | null): string {
  return (header ?? "").split(";")[0].trim().toLowerCase();
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
