/** One sessionless call as the multiplexer's downstream and reply, across its rounds. */
import assert from "node:assert/strict";
import { type CallOptions, ModernCall } from "../../../lib/mcp/modern/call.ts";
import { Exchange } from "../../../lib/mcp/modern/exchange.ts";
import { forwardedParams } from "../../../lib/mcp/modern/handler.ts";
import { wantsModern } from "../../../lib/mcp/modern/lane.ts";
import { SseRegistry } from "../../../lib/mcp/sse.ts";
import { SERVER_DEFAULTS } from "../../../lib/config/schema.ts";
import type { ModernRequest } from "../../../lib/mcp/modern/validate.ts";

const registry = new SseRegistry();
const KEY = "mcp-oauth-proxy/inputKey";

function exchange(request: Partial<ModernRequest> = {}, sse = true): Exchange {
  return new Exchange(
    {
      kind: "request",
      id: 4,
      method: "tools/call",
      params: { name: "t" },
      capabilities: { elicitation: {}, roots: {} },
      logLevel: null,
      clientName: "c",
      ...request,
    },
    sse,
    registry,
  );
}

function setup(first = exchange()) {
  const answered: Record<string, unknown>[] = [];
  const events: string[] = [];
  const options: CallOptions = {
    request: first.request,
    server: { name: "s", command: "x", args: [], env: {}, logArguments: false, ...SERVER_DEFAULTS },
    identity: { key: "anonymous" },
    shape: { serverInfo: { name: "child", version: "1" }, ttlMs: 0, cacheScope: "public" },
    answerChild: (m) => answered.push(m),
    cancel: () => events.push("cancel"),
    park: (c) => {
      events.push(`park ${c.round}`);
      return Promise.resolve(`state-${c.round}`);
    },
    unpark: () => events.push("unpark"),
  };
  return { call: new ModernCall(options, first), first, answered, events };
}

const result = (r: unknown) => JSON.stringify({ jsonrpc: "2.0", id: 4, result: r });
function ask(method: string, id = "mop-1", key?: string) {
  const params: Record<string, unknown> = { message: "q" };
  if (key) params._meta = { [KEY]: key, other: 1 };
  return JSON.stringify({ jsonrpc: "2.0", id, method, params });
}
async function body(ex: Exchange) {
  return await (await ex.response).json();
}

Deno.test("call: the answer is translated and sent as JSON", async () => {
  const { call, first, events } = setup();
  call.end(result({ content: [] }));
  const res = await first.response;
  assert.equal(res.status, 200);
  const json = await res.json();
  assert.equal(json.id, 4);
  assert.equal(json.result.resultType, "complete");
  assert.deepEqual(events, ["unpark"]);
  assert.equal(call.done, true);
});

Deno.test("call: an undeclared capability is refused to the child with -32021", async () => {
  const { call, first, answered } = setup();
  call.send(ask("sampling/createMessage"));
  const error = answered[0].error as { code: number; data: unknown };
  assert.equal(answered[0].id, "mop-1");
  assert.equal(error.code, -32021);
  assert.deepEqual(error.data, { requiredCapabilities: { sampling: {} } });
  // The child could not do without it: the client gets -32021 with HTTP 400.
  call.end(result({ content: [], isError: true }));
  const res = await first.response;
  assert.equal(res.status, 400);
  const json = await res.json();
  assert.equal(json.error.code, -32021);
  assert.deepEqual(json.error.data.requiredCapabilities, { sampling: {} });
});

Deno.test("call: a child that recovers from a refusal answers normally", async () => {
  const { call, first } = setup(exchange({ capabilities: {} }));
  call.send(ask("roots/list"));
  call.end(result({ content: [{ type: "text", text: "fine" }] }));
  assert.equal((await first.response).status, 200);
});

Deno.test("call: input requests of one window go out together; the retry answers them", async () => {
  const { call, first, answered, events } = setup();
  call.send(ask("elicitation/create", "mop-1", "user_name"));
  call.send(ask("roots/list", "mop-2"));
  const irr = await body(first);
  assert.equal(irr.id, 4);
  assert.equal(irr.result.resultType, "input_required");
  assert.equal(irr.result.requestState, "state-1");
  assert.deepEqual(Object.keys(irr.result.inputRequests), ["user_name", "input-1"]);
  // The proxy's key hint is not passed on; the child's other _meta is.
  assert.deepEqual(irr.result.inputRequests.user_name, {
    method: "elicitation/create",
    params: { message: "q", _meta: { other: 1 } },
  });
  assert.ok(irr.result._meta["io.modelcontextprotocol/serverInfo"]);
  assert.equal(call.parked, true);
  assert.equal(answered.length, 0, "the child's requests stay pending");

  const retry = exchange({
    id: 5,
    params: {
      name: "t",
      inputResponses: {
        user_name: { action: "accept", content: { name: "A" } },
        "input-1": { roots: [] },
        extra: { ignored: true },
      },
    },
  });
  call.resume(retry);
  assert.deepEqual(answered.map((a) => [a.id, a.result]), [
    ["mop-1", { action: "accept", content: { name: "A" } }],
    ["mop-2", { roots: [] }],
  ]);
  call.end(result({ content: [] }));
  const done = await body(retry);
  assert.equal(done.id, 5);
  assert.equal(done.result.resultType, "complete");
  assert.deepEqual(events, ["park 1", "unpark"]);
});

Deno.test("call: missing responses are asked again in a new round", async () => {
  const { call, first, events } = setup();
  call.send(ask("elicitation/create", "mop-1", "a"));
  call.send(ask("elicitation/create", "mop-2", "b"));
  await first.response;
  const retry = exchange({
    id: 6,
    params: { name: "t", inputResponses: { a: { action: "decline" } } },
  });
  call.resume(retry);
  const again = await body(retry);
  assert.equal(again.result.resultType, "input_required");
  assert.deepEqual(Object.keys(again.result.inputRequests), ["b"]);
  assert.equal(again.result.requestState, "state-2");
  assert.deepEqual(events, ["park 1", "park 2"]);
  call.abandon();
});

Deno.test("call: responses on the first request answer the child without a round", async () => {
  const first = exchange({
    params: { name: "t", inputResponses: { user_name: { action: "accept", content: {} } } },
  });
  const { call, answered, events } = setup(first);
  call.send(ask("elicitation/create", "mop-1", "user_name"));
  assert.equal(answered.length, 1);
  call.end(result({ content: [] }));
  assert.equal((await body(first)).result.resultType, "complete");
  assert.deepEqual(events, ["unpark"]);
});

Deno.test("call: a malformed input response fails the call with -32602", async () => {
  const first = exchange({ params: { name: "t", inputResponses: { user_name: 12345 } } });
  const { call, answered, events } = setup(first);
  call.send(ask("elicitation/create", "mop-1", "user_name"));
  const json = await body(first);
  assert.equal(json.error.code, -32602);
  assert.equal((answered[0].error as { code: number }).code, -32603);
  assert.deepEqual(events, ["cancel", "unpark"]);
  assert.equal(call.done, true);
});

Deno.test("call: an answer that comes while parked goes to the retry", async () => {
  const { call, first } = setup();
  call.send(ask("elicitation/create", "mop-1", "k"));
  await first.response;
  call.end(result({ content: [{ type: "text", text: "late" }] }));
  const retry = exchange({ id: 9, params: { name: "t" } });
  call.resume(retry);
  const json = await body(retry);
  assert.equal(json.id, 9);
  assert.equal(json.result.content[0].text, "late");
});

Deno.test("call: a child that gives up on its request is not asked again", async () => {
  const { call, first } = setup();
  call.send(ask("elicitation/create", "mop-1", "a"));
  call.send(ask("elicitation/create", "mop-2", "b"));
  await first.response;
  call.notify(JSON.stringify({
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: "mop-1" },
  }));
  const retry = exchange({ id: 7, params: { name: "t" } });
  call.resume(retry);
  assert.deepEqual(Object.keys((await body(retry)).result.inputRequests), ["b"]);
  call.abandon();
});

Deno.test("call: methods that cannot carry input requests refuse them to the child", async () => {
  const first = exchange({ method: "tools/list", params: {} });
  const { call, answered } = setup(first);
  call.send(ask("elicitation/create"));
  assert.equal((answered[0].error as { code: number }).code, -32601);
  call.end(result({ tools: [] }));
  await first.response;
});

Deno.test("call: progress opens a stream; logs only at the requested level", async () => {
  const first = exchange({ logLevel: 4 }); // "warning"
  const { call } = setup(first);
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
  const res = await first.response;
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const text = await res.text();
  const events = text.split("\n\n").filter((e) => e.startsWith("data: "));
  assert.equal(events.length, 3);
  assert.ok(events[0].includes("notifications/progress"));
  assert.ok(events[1].includes('"error"'));
  assert.ok(events[2].includes('"resultType":"complete"'));
  assert.ok(!text.includes("id: "), "no event ids: 2026-07-28 streams are not resumable");
});

Deno.test("call: without a log level no log is sent; JSON stays JSON without SSE", async () => {
  const first = exchange({}, false);
  const { call } = setup(first);
  call.send(
    JSON.stringify({
      jsonrpc: "2.0",
      method: "notifications/message",
      params: { level: "emergency" },
    }),
  );
  call.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: {} }));
  call.end(result({}));
  assert.equal((await first.response).headers.get("content-type"), "application/json");
});

Deno.test("call: a client that goes away cancels the request at the child", () => {
  const { call, events } = setup();
  call.send(ask("elicitation/create", "mop-1", "k"));
  call.abandon();
  call.abandon();
  assert.deepEqual(events, ["cancel", "unpark"]);
});

Deno.test("forwardedParams: the per-request fields and retry fields stay at the proxy", () => {
  assert.deepEqual(
    forwardedParams({
      name: "t",
      inputResponses: { a: {} },
      requestState: "s",
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
