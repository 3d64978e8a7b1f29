/**
 * One JSON-RPC request through the proxy as a test compares its answers: the SDK client of a
 * 2025-era session, or a raw MCP 2026-07-28 POST with the revision's envelope and headers; and
 * the shape of an error with the item taken out, to compare a refusal with an unknown item's.
 */
import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/types"
import { ResultSchema } from "@modelcontextprotocol/sdk/types.js";
import type { Client } from "./client.ts";
import { sseMessages } from "./sse.ts";

export const MODERN = "2026-07-28";

export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}
export type Answer = { result?: Record<string, unknown>; error?: RpcError };

/** A request on an SDK client's session; an error answer comes back as `error`. */
export async function sdkRequest(
  client: Client,
  method: string,
  params: Record<string, unknown> = {},
): Promise<Answer> {
  try {
    return { result: await client.request({ method, params } as never, ResultSchema) };
  } catch (error) {
    const { code, message, data } = error as RpcError;
    return { error: { code, message, data } };
  }
}

/** The `_meta` every 2026-07-28 request carries (basic/versioning). */
export const MODERN_META = {
  "io.modelcontextprotocol/protocolVersion": MODERN,
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};

/**
 * A 2026-07-28 request to `url`, with `Mcp-Method` and (for a named item) `Mcp-Name`, and any
 * `extra` headers (a bearer token).
 */
export async function modernRequest(
  url: string,
  id: number,
  method: string,
  params: Record<string, unknown> = {},
  extra: Record<string, string> = {},
): Promise<Answer> {
  const headers: Record<string, string> = {
    ...extra,
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": MODERN,
    "mcp-method": method,
  };
  const name = method === "resources/read" ? params.uri : params.name;
  if (typeof name === "string" && method !== "completion/complete") headers["mcp-name"] = name;
  const res = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id, method, params: { ...params, _meta: MODERN_META } }),
  });
  return await res.json();
}

/** An error with the item's name taken out, to compare a refusal with an unknown item's. */
export function shape(answer: Answer, item: string): string {
  assert.ok(answer.error, `expected an error for ${item}, got ${JSON.stringify(answer)}`);
  return JSON.stringify(answer.error).replaceAll(item, "<item>");
}

/** One frame of a listen stream. */
export interface Frame {
  method?: string;
  params: Record<string, unknown>;
}

/** An open 2026-07-28 `subscriptions/listen` stream. */
export interface ListenStream {
  /** The next frame; a frame that never comes (30 s) or an ended stream fails the test. */
  next(): Promise<Frame>;
  close(): void;
}

/**
 * Opens a `subscriptions/listen` stream on `url` with the filter `notifications` (and `extra`
 * headers, a bearer token), request id `id`.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/subscriptions
 */
export async function openListen(
  url: string,
  notifications: Record<string, unknown>,
  extra: Record<string, string> = {},
  id: string | number = "listen",
): Promise<ListenStream> {
  const aborter = new AbortController();
  const res = await fetch(url, {
    method: "POST",
    signal: aborter.signal,
    headers: {
      ...extra,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": MODERN,
      "mcp-method": "subscriptions/listen",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id,
      method: "subscriptions/listen",
      params: { notifications, _meta: MODERN_META },
    }),
  });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const frames = sseMessages(res);
  const next = async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no frame within 30 s")), 30_000);
    });
    const frame = await Promise.race([frames.next(), late]).finally(() => clearTimeout(timer));
    assert.ok(frame.value, "the stream ended");
    return frame.value as unknown as Frame;
  };
  return { next, close: () => aborter.abort() };
}
