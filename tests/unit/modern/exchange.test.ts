/** One HTTP exchange of the sessionless lane: JSON or SSE, and the client going away. */
import assert from "node:assert/strict";
import { Exchange, WATCH_AFTER_MS } from "../../../lib/mcp/modern/exchange.ts";
import { SseRegistry } from "../../../lib/mcp/sse.ts";
import type { ModernRequest } from "../../../lib/mcp/modern/validate.ts";

const REQUEST: ModernRequest = {
  kind: "request",
  id: 1,
  method: "tools/call",
  params: {},
  capabilities: {},
  logLevel: null,
  clientName: "c",
};

Deno.test("exchange: a quick answer never reads the request's AbortSignal", async () => {
  let reads = 0;
  const ex = new Exchange(REQUEST, true, new SseRegistry(), () => {
    reads++;
    return new AbortController().signal;
  });
  ex.finish('{"jsonrpc":"2.0","id":1,"result":{}}');
  assert.equal((await ex.response).status, 200);
  await new Promise((r) => setTimeout(r, WATCH_AFTER_MS + 100));
  assert.equal(reads, 0);
});

Deno.test("exchange: a client gone before a slow answer is noticed once the call runs a while", async () => {
  const aborter = new AbortController();
  aborter.abort();
  const ex = new Exchange(REQUEST, false, new SseRegistry(), () => aborter.signal);
  let gone = 0;
  ex.onGone(() => gone++);
  await new Promise((r) => setTimeout(r, WATCH_AFTER_MS + 100));
  assert.equal(gone, 1);
  assert.equal(ex.finished, true);
  ex.finish("{}"); // nothing more is sent
  // The HTTP handler is not left waiting: the pending answer is settled as cancelled.
  assert.equal((await (await ex.response).json()).error.code, -32800);
});

Deno.test("exchange: a notification turns the answer into an SSE stream without event ids", async () => {
  const ex = new Exchange(REQUEST, true, new SseRegistry());
  ex.notify('{"jsonrpc":"2.0","method":"notifications/progress","params":{}}');
  ex.finish('{"jsonrpc":"2.0","id":1,"result":{}}');
  const res = await ex.response;
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  assert.equal(res.headers.get("x-accel-buffering"), "no");
  const text = await res.text();
  assert.equal(text.split("data: ").length - 1, 2);
  assert.ok(!text.includes("id: "));
});

Deno.test("exchange: one timer watches the client after a while, then switches a long request to SSE", async () => {
  let reads = 0;
  const aborter = new AbortController();
  const ex = new Exchange(REQUEST, true, new SseRegistry(), () => {
    reads++;
    return aborter.signal;
  }, { watchMs: 20, streamMs: 60 });
  const alive = setTimeout(() => {}, 5000); // the exchange's own timer does not keep the test up
  const res = await ex.response; // nothing was sent: the stream opens on time alone
  clearTimeout(alive);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  assert.equal(reads, 1);
  ex.finish('{"jsonrpc":"2.0","id":1,"result":{}}');
  assert.equal((await res.text()).split("data: ").length - 1, 1);
  // A client that takes no stream keeps its JSON answer however long the call runs.
  const json = new Exchange(REQUEST, false, new SseRegistry(), undefined, {
    watchMs: 5,
    streamMs: 10,
  });
  await new Promise((r) => setTimeout(r, 30));
  json.finish('{"jsonrpc":"2.0","id":1,"result":{}}');
  assert.equal((await json.response).headers.get("content-type"), "application/json");
});
