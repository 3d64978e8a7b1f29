/** One sessionless call as the multiplexer's downstream and reply. */
import assert from "node:assert/strict";
import { type CallOptions, ModernCall } from "../../../lib/mcp/modern/call.ts";
import { forwardedParams, wantsModern } from "../../../lib/mcp/modern/handler.ts";
import { SseRegistry } from "../../../lib/mcp/sse.ts";
import { SERVER_DEFAULTS } from "../../../lib/config/schema.ts";
import type { ModernRequest } from "../../../lib/mcp/modern/validate.ts";

function setup(request: Partial<ModernRequest> = {}, sse = true) {
  const answered: Record<string, unknown>[] = [];
  let cancelled = 0;
  const options: CallOptions = {
    request: {
      kind: "request",
      id: 4,
      method: "tools/call",
      params: { name: "t" },
      capabilities: { elicitation: {} },
      logLevel: null,
      clientName: "c",
      ...request,
    },
    server: { name: "s", command: "x", args: [], env: {}, logArguments: false, ...SERVER_DEFAULTS },
    identity: { key: "anonymous" },
    shape: { serverInfo: { name: "child", version: "1" }, ttlMs: 0, cacheScope: "public" },
    sse,
    registry: new SseRegistry(),
    answerChild: (m) => answered.push(m),
    cancel: () => cancelled++,
  };
  return { call: new ModernCall(options), answered, cancelled: () => cancelled };
}

const result = (r: unknown) => JSON.stringify({ jsonrpc: "2.0", id: 4, result: r });
const request = (method: string) => JSON.stringify({ jsonrpc: "2.0", id: "mop-1", method });

Deno.test("call: the answer is translated and sent as JSON", async () => {
  const { call } = setup();
  call.end(result({ content: [] }));
  const res = await call.response;
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.id, 4);
  assert.equal(body.result.resultType, "complete");
});

Deno.test("call: an undeclared capability is refused to the child with -32021", async () => {
  const { call, answered } = setup();
  call.send(request("sampling/createMessage"));
  assert.equal(answered.length, 1);
  const error = answered[0].error as { code: number; data: unknown };
  assert.equal(answered[0].id, "mop-1");
  assert.equal(error.code, -32021);
  assert.deepEqual(error.data, { requiredCapabilities: { sampling: {} } });
  // The child could not do without it: the client gets -32021 with HTTP 400.
  call.end(result({ content: [], isError: true }));
  const res = await call.response;
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.code, -32021);
  assert.deepEqual(body.error.data.requiredCapabilities, { sampling: {} });
});

Deno.test("call: a child that recovers from a refusal answers normally", async () => {
  const { call } = setup();
  call.send(request("roots/list"));
  call.end(result({ content: [{ type: "text", text: "fine" }] }));
  assert.equal((await call.response).status, 200);
});

Deno.test("call: a declared capability is not relayed (yet), without -32021", () => {
  const { call, answered } = setup();
  call.send(request("elicitation/create"));
  assert.equal((answered[0].error as { code: number }).code, -32601);
  call.end(result({}));
});

Deno.test("call: progress opens a stream; logs only at the requested level", async () => {
  const { call } = setup({ logLevel: 4 }); // "warning"
  const log = (level: string) =>
    JSON.stringify({
      jsonrpc: "2.0",
      method: "notifications/message",
      params: { level, data: level },
    });
  call.send(log("info"));
  call.send(
    JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progress: 1 } }),
  );
  call.send(log("error"));
  call.end(result({}));
  const res = await call.response;
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const text = await res.text();
  const events = text.split("\n\n").filter((e) => e.startsWith("data: "));
  assert.equal(events.length, 3);
  assert.ok(events[0].includes("notifications/progress"));
  assert.ok(events[1].includes('"error"'));
  assert.ok(events[2].includes('"resultType":"complete"'));
  assert.ok(!text.includes("id: "), "no event ids: 2026-07-28 streams are not resumable");
});

Deno.test("call: without a log level no log is sent, and JSON stays JSON without SSE", async () => {
  const { call } = setup({}, false);
  call.send(
    JSON.stringify({
      jsonrpc: "2.0",
      method: "notifications/message",
      params: { level: "emergency" },
    }),
  );
  call.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: {} }));
  call.end(result({}));
  assert.equal((await call.response).headers.get("content-type"), "application/json");
});

Deno.test("call: a client that goes away cancels the request at the child", async () => {
  const { call, cancelled } = setup();
  call.abandon();
  assert.equal(cancelled(), 1);
  call.abandon();
  assert.equal(cancelled(), 1);
  await call.response;
});

Deno.test("forwardedParams: the per-request fields stay at the proxy", () => {
  assert.deepEqual(
    forwardedParams({
      name: "t",
      _meta: {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { name: "c" },
        "io.modelcontextprotocol/logLevel": "info",
        progressToken: 3,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
      },
    }),
    {
      name: "t",
      _meta: {
        progressToken: 3,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
      },
    },
  );
  assert.deepEqual(
    forwardedParams({ _meta: { "io.modelcontextprotocol/protocolVersion": "x" } }),
    {},
  );
});

Deno.test("wantsModern: versions the 2025-era transports do not know", () => {
  const req = (v?: string) =>
    new Request("http://x/", { headers: v ? { "mcp-protocol-version": v } : {} });
  assert.equal(wantsModern(req("2026-07-28")), true);
  assert.equal(wantsModern(req("v999.0.0")), true);
  assert.equal(wantsModern(req("2025-11-25")), false);
  assert.equal(wantsModern(req("2024-11-05")), false);
  assert.equal(wantsModern(req()), false);
  // Inside a 2025 session an unknown version stays the session's error; 2026 ignores the id.
  const inSession = (v: string) =>
    new Request("http://x/", { headers: { "mcp-protocol-version": v, "mcp-session-id": "s" } });
  assert.equal(wantsModern(inSession("1999-01-01")), false);
  assert.equal(wantsModern(inSession("2026-07-28")), true);
});
