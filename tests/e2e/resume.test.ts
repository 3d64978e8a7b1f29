/** SSE resumption: a client that loses a POST stream gets the rest of it with Last-Event-ID. */
import assert from "node:assert/strict";
import { fixtureServer, startProxy } from "../helpers/proxy.ts";

const HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-11-25",
};

Deno.test("a dropped POST stream is resumed on GET with Last-Event-ID", async () => {
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer() } });
  const url = proxy.url("fx");
  try {
    const init = await fetch(url, {
      method: "POST",
      headers: HEADERS,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 0,
        method: "initialize",
        params: {
          protocolVersion: "2025-11-25",
          capabilities: {},
          clientInfo: { name: "raw", version: "1" },
        },
      }),
    });
    const sid = init.headers.get("mcp-session-id")!;
    await init.body?.cancel();
    const headers = { ...HEADERS, "mcp-session-id": sid };
    const call = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: {
          name: "progress",
          arguments: { steps: 4, delayMs: 150 },
          _meta: { progressToken: 7 },
        },
      }),
    });
    assert.equal(call.headers.get("content-type"), "text/event-stream");
    const reader = call.body!.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!/"progress":1[,}]/.test(seen)) seen += (await reader.read()).value ?? "";
    await reader.cancel(); // The connection drops after the first progress event.
    const ids = [...seen.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]);
    const last = ids.at(-1)!;
    assert.match(last, /^\d+_1$/);

    const resumed = await fetch(url, {
      headers: { accept: "text/event-stream", "mcp-session-id": sid, "last-event-id": last },
    });
    assert.equal(resumed.status, 200);
    const rest = await resumed.text(); // The stream ends after the final response.
    const messages = [...rest.matchAll(/^data: (.+)$/gm)].map((m) => JSON.parse(m[1]));
    assert.deepEqual(
      messages.filter((m) => m.method === "notifications/progress").map((m) => m.params.progress),
      [2, 3, 4],
    );
    const final = messages.at(-1);
    assert.equal(final.id, 1);
    assert.equal(final.result.content[0].text, "done 4");
  } finally {
    await proxy.stop();
  }
});
