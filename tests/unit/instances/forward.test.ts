/** Forwarding to the owner instance: end-to-end fields pass, hop-by-hop ones do not. */
import assert from "node:assert/strict";
import {
  forwardedHeaders,
  forwardRequest,
  relayedResponse,
} from "../../../lib/instances/forward.ts";
import { CLIENT_IP_HEADER, PEER_HEADER } from "../../../lib/instances/tags.ts";

Deno.test("forwarded fields: end-to-end kept, hop-by-hop and forged peer fields replaced", () => {
  const out = forwardedHeaders(
    new Headers({
      authorization: "Bearer x",
      "mcp-session-id": "s",
      accept: "text/event-stream",
      connection: "keep-alive, x-private",
      "x-private": "1",
      "keep-alive": "timeout=5",
      host: "public.example",
      "content-length": "3",
      [PEER_HEADER]: "forged",
      [CLIENT_IP_HEADER]: "203.0.113.9",
    }),
    "sig",
    "192.0.2.1",
  );
  assert.deepEqual(Object.fromEntries(out), {
    accept: "text/event-stream",
    authorization: "Bearer x",
    "mcp-session-id": "s",
    [PEER_HEADER]: "sig",
    [CLIENT_IP_HEADER]: "192.0.2.1",
  });
  const back = relayedResponse(
    new Response("x", { status: 404, headers: { "mcp-session-id": "s", connection: "close" } }),
  );
  assert.equal(back.status, 404);
  assert.equal(back.headers.get("mcp-session-id"), "s");
  assert.equal(back.headers.get("connection"), null);
});

Deno.test("forwardRequest streams the body both ways; an unreachable owner gives null", async () => {
  const seen: { url: string; body: string; sig: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    seen.push({ url: r.url, body: await r.text(), sig: r.headers.get(PEER_HEADER) });
    return new Response("data: 1\n\n", { headers: { "content-type": "text/event-stream" } });
  });
  const origin = `http://127.0.0.1:${server.addr.port}`;
  try {
    const req = new Request("http://public.example/base/mcp/files?x=1", {
      method: "POST",
      body: '{"jsonrpc":"2.0"}',
      headers: { "content-type": "application/json" },
    });
    const res = await forwardRequest(req, {
      origin,
      path: "/mcp/files?x=1",
      signature: "sig",
      clientIp: "192.0.2.1",
    });
    assert.ok(res);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    assert.equal(await res.text(), "data: 1\n\n");
    assert.deepEqual(seen, [{
      url: `${origin}/mcp/files?x=1`,
      body: '{"jsonrpc":"2.0"}',
      sig: "sig",
    }]);
    const read = new Request("http://public.example/mcp/files", { method: "POST", body: "{}" });
    await read.text();
    const again = await forwardRequest(read, {
      origin,
      path: "/mcp/files",
      signature: "s",
      clientIp: "1",
      body: "{}",
    });
    assert.equal(await again?.text(), "data: 1\n\n");
    assert.equal(seen[1].body, "{}");
  } finally {
    await server.shutdown();
  }
  const aborted = new AbortController();
  aborted.abort();
  const left = await forwardRequest(new Request("http://x/mcp/f", { signal: aborted.signal }), {
    origin,
    path: "/mcp/f",
    signature: "s",
    clientIp: "1",
  });
  assert.equal(left?.status, 499, "the client went away: not 'owner gone'");
  const gone = await forwardRequest(new Request("http://x/mcp/f"), {
    origin,
    path: "/mcp/f",
    signature: "s",
    clientIp: "1",
  });
  assert.equal(gone, null);
});
