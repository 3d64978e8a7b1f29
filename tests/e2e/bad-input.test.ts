/** Malformed and hostile requests: each gets its status and, where the protocol wants one, a JSON-RPC error. */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";

const JSON_SSE = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

function init(version = "2025-06-18", id: number | string = 1) {
  return {
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: {
      protocolVersion: version,
      capabilities: {},
      clientInfo: { name: "raw", version: "1" },
    },
  };
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { ...JSON_SSE, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */ }
  return {
    res,
    text,
    json,
    error: json?.error as { code: number; message: string; data?: unknown } | undefined,
  };
}

async function openSession(proxy: ProxyProcess, version = "2025-06-18"): Promise<string> {
  const { res } = await post(proxy.url("fx"), init(version));
  assert.equal(res.status, 200);
  return res.headers.get("mcp-session-id")!;
}

/** Opens a legacy SSE stream and returns its message endpoint (the stream stays open). */
async function legacySession(proxy: ProxyProcess): Promise<string> {
  const res = await fetch(`${proxy.origin}/sse/fx`, { headers: { accept: "text/event-stream" } });
  assert.equal(res.status, 200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/^data: (\S+)$/m.test(seen)) seen += (await reader.read()).value ?? "";
  return `${proxy.origin}${/^data: (\S+)$/m.exec(seen)![1]}`;
}

let proxy: ProxyProcess;

Deno.test("bad input", async (t) => {
  proxy = await startProxy({
    mcpServers: { fx: fixtureServer(), other: fixtureServer() },
    allowedOrigins: ["http://localhost:6274"],
    limits: { maxMessageIn: "64KiB" },
  });
  const url = proxy.url("fx");
  try {
    await t.step("invalid JSON: 400 parse error", async () => {
      const r = await post(url, "{not json");
      assert.equal(r.res.status, 400);
      assert.equal(r.error?.code, -32700);
      assert.equal(r.json?.id, null);
    });

    await t.step("not JSON-RPC 2.0: 400 invalid request", async () => {
      const r = await post(url, { jsonrpc: "1.0", id: 1, method: "x" });
      assert.equal(r.res.status, 400);
      assert.equal(r.error?.code, -32600);
    });

    await t.step("wrong content type: 415", async () => {
      const r = await post(url, init(), { "content-type": "text/plain" });
      assert.equal(r.res.status, 415);
      assert.equal(r.error?.code, -32600);
    });

    await t.step("oversized body: 413, and the proxy still answers", async () => {
      const big = {
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: { name: "echo", arguments: { text: "x".repeat(70_000) } },
      };
      const r = await post(url, big);
      assert.equal(r.res.status, 413);
      assert.equal(r.error?.code, -32600);
      assert.equal((await fetch(`${proxy.origin}/healthz`)).status, 200);
    });

    await t.step("missing session id: 400", async () => {
      const r = await post(url, { jsonrpc: "2.0", id: 2, method: "tools/list" });
      assert.equal(r.res.status, 400);
      assert.match(r.error!.message, /Mcp-Session-Id/);
    });

    await t.step("unknown session id: 404", async () => {
      const r = await post(url, { jsonrpc: "2.0", id: 2, method: "tools/list" }, {
        "mcp-session-id": "nope",
      });
      assert.equal(r.res.status, 404);
      assert.match(r.error!.message, /session not found/);
    });

    await t.step("a session of another server: 404", async () => {
      const sid = await openSession(proxy);
      const r = await post(proxy.url("other"), { jsonrpc: "2.0", id: 2, method: "tools/list" }, {
        "mcp-session-id": sid,
      });
      assert.equal(r.res.status, 404);
    });

    await t.step("a JSON array on 2025-06-18: 400", async () => {
      const sid = await openSession(proxy, "2025-06-18");
      const r = await post(url, [{ jsonrpc: "2.0", id: 2, method: "tools/list" }], {
        "mcp-session-id": sid,
      });
      assert.equal(r.res.status, 400);
      assert.match(r.error!.message, /batches are not supported in protocol version 2025-06-18/);
    });

    await t.step("a JSON array on 2025-03-26 is a batch answered in order", async () => {
      const sid = await openSession(proxy, "2025-03-26");
      const batch = [
        {
          jsonrpc: "2.0",
          id: "a",
          method: "tools/call",
          params: { name: "echo", arguments: { text: "one" } },
        },
        {
          jsonrpc: "2.0",
          method: "notifications/progress",
          params: { progressToken: 1, progress: 1 },
        },
        {
          jsonrpc: "2.0",
          id: "b",
          method: "tools/call",
          params: { name: "add", arguments: { a: 1, b: 2 } },
        },
      ];
      const r = await post(url, batch, { "mcp-session-id": sid, accept: "application/json" });
      assert.equal(r.res.status, 200);
      const answers = JSON.parse(r.text) as Array<
        { id: string; result: { content: Array<{ text: string }> } }
      >;
      const byId = Object.fromEntries(answers.map((a) => [a.id, a.result.content[0].text]));
      assert.deepEqual(byId, { a: "one", b: "3" });
    });

    await t.step("initialize inside a batch: 400", async () => {
      const r = await post(url, [init(), init("2025-06-18", 2)]);
      assert.equal(r.res.status, 400);
    });

    await t.step(
      "unsupported MCP-Protocol-Version header: 400 listing the supported ones",
      async () => {
        const sid = await openSession(proxy);
        const r = await post(url, { jsonrpc: "2.0", id: 3, method: "tools/list" }, {
          "mcp-session-id": sid,
          "mcp-protocol-version": "1999-01-01",
        });
        assert.equal(r.res.status, 400);
        assert.deepEqual((r.error!.data as { supported: string[] }).supported, [
          "2025-11-25",
          "2025-06-18",
          "2025-03-26",
        ]);
      },
    );

    await t.step(
      "a 2026-07-28 request takes the sessionless lane: its errors echo the id",
      async () => {
        const r = await post(url, {
          jsonrpc: "2.0",
          id: 9,
          method: "tools/list",
          params: { _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } },
        }, { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list" });
        assert.equal(r.res.status, 400);
        assert.equal(r.error?.code, -32602); // clientCapabilities is missing
        assert.equal(r.json?.id, 9);
        const r2 = await post(url, {
          jsonrpc: "2.0",
          id: 10,
          method: "server/discover",
          params: { _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } },
        });
        assert.equal(r2.res.status, 400);
        assert.equal(r2.error?.code, -32602);
        assert.equal(r2.json?.id, 10);
      },
    );

    await t.step(
      "an initialize asking for an unknown version is answered with the latest",
      async () => {
        const r = await post(url, init("2031-01-01"));
        assert.equal(r.res.status, 200);
        assert.equal((r.json!.result as { protocolVersion: string }).protocolVersion, "2025-11-25");
      },
    );

    await t.step("a foreign Origin: 403; an allowed one gets CORS headers", async () => {
      const bad = await post(url, init(), { origin: "https://evil.example" });
      assert.equal(bad.res.status, 403);
      assert.ok(bad.error);
      assert.equal(bad.res.headers.get("access-control-allow-origin"), null);
      const good = await post(url, init(), { origin: "http://localhost:6274" });
      assert.equal(good.res.status, 200);
      assert.equal(good.res.headers.get("access-control-allow-origin"), "http://localhost:6274");
      assert.match(good.res.headers.get("access-control-expose-headers")!, /mcp-session-id/);
      const own = await post(url, init(), { origin: proxy.origin });
      assert.equal(own.res.status, 200);
    });

    await t.step("unknown server, /mcp alone, unknown paths: the same 404", async () => {
      const bodies = new Set<string>();
      for (const path of ["/mcp/nope", "/mcp", "/mcp/", "/mcp/fx/extra", "/admin", "/.env"]) {
        const res = await fetch(`${proxy.origin}${path}`, {
          method: "POST",
          headers: JSON_SSE,
          body: "{}",
        });
        assert.equal(res.status, 404, path);
        bodies.add(await res.text());
      }
      assert.equal(bodies.size, 1);
    });

    await t.step("GET without Accept: text/event-stream: 406; unknown methods: 405", async () => {
      const sid = await openSession(proxy);
      const res = await fetch(url, {
        headers: { "mcp-session-id": sid, accept: "application/json" },
      });
      assert.equal(res.status, 406);
      await res.body?.cancel();
      const put = await fetch(url, { method: "PUT", headers: { "mcp-session-id": sid } });
      assert.equal(put.status, 405);
      assert.equal(put.headers.get("allow"), "GET, POST, DELETE");
      await put.body?.cancel();
    });

    await t.step("notifications get 202 with no body; DELETE ends the session", async () => {
      const sid = await openSession(proxy);
      const n = await post(url, { jsonrpc: "2.0", method: "notifications/initialized" }, {
        "mcp-session-id": sid,
      });
      assert.equal(n.res.status, 202);
      assert.equal(n.text, "");
      const del = await fetch(url, { method: "DELETE", headers: { "mcp-session-id": sid } });
      assert.equal(del.status, 204);
      const after = await post(url, { jsonrpc: "2.0", id: 5, method: "tools/list" }, {
        "mcp-session-id": sid,
      });
      assert.equal(after.res.status, 404);
    });

    await t.step("Accept without text/event-stream gets JSON, not 406", async () => {
      const sid = await openSession(proxy);
      const r = await post(url, { jsonrpc: "2.0", id: 6, method: "tools/list" }, {
        "mcp-session-id": sid,
        accept: "application/json",
      });
      assert.equal(r.res.status, 200);
      assert.equal(r.res.headers.get("content-type"), "application/json");
      assert.ok(Array.isArray((r.json!.result as { tools: unknown[] }).tools));
    });

    await t.step("an SSE response starts with the priming event", async () => {
      const { res } = await post(url, init("2025-11-25"));
      const sid = res.headers.get("mcp-session-id")!;
      const r = await fetch(url, {
        method: "POST",
        headers: { ...JSON_SSE, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 7,
          method: "tools/call",
          params: {
            name: "progress",
            arguments: { steps: 2, delayMs: 1 },
            _meta: { progressToken: "tok" },
          },
        }),
      });
      assert.equal(r.headers.get("content-type"), "text/event-stream");
      assert.equal(r.headers.get("cache-control"), "no-cache, no-transform");
      const body = await r.text();
      const events = body.trim().split("\n\n");
      assert.match(events[0], /^id: \d+_0\nretry: \d+\ndata: $/);
      assert.match(events[1], /"progressToken":"tok"/);
      const last = JSON.parse(events.at(-1)!.split("data: ")[1]);
      assert.equal(last.id, 7);
      assert.equal(last.result.content[0].text, "done 2");
    });

    await t.step("legacy SSE: unknown sessionId is 404, and messages need JSON", async () => {
      const r = await post(`${proxy.origin}/sse/fx/messages?sessionId=nope`, init());
      assert.equal(r.res.status, 404);
    });

    await t.step("every error answer carries the request id when it can be read", async () => {
      const probe = (id: number | string) => ({ jsonrpc: "2.0", id, method: "server/discover" });
      const sid = await openSession(proxy);
      const legacy = await legacySession(proxy);
      const cases: Array<[string, string, unknown, Record<string, string>, number]> = [
        // A 2026-07-28 client announces its revision in the header on every request.
        ["-32022 from the header", url, probe("server-discover-probe-1"), {
          "mcp-protocol-version": "2026-07-28",
        }, 400],
        [
          "unsupported header version",
          url,
          probe(11),
          { "mcp-protocol-version": "1999-01-01" },
          400,
        ],
        ["wrong content type", url, probe(12), { "content-type": "text/plain" }, 415],
        ["missing session id", url, probe(13), {}, 400],
        ["unknown session", url, probe(14), { "mcp-session-id": "nope" }, 404],
        ["another server's session", proxy.url("other"), probe(15), { "mcp-session-id": sid }, 404],
        ["invalid message with an id", url, { jsonrpc: "2.0", id: 16, method: 5 }, {}, 400],
        [
          "legacy: unknown session",
          `${proxy.origin}/sse/fx/messages?sessionId=nope`,
          probe(17),
          {},
          404,
        ],
        ["legacy: wrong content type", legacy, probe(18), { "content-type": "text/plain" }, 415],
        ["legacy: invalid message", legacy, { jsonrpc: "2.0", id: 19, method: 5 }, {}, 400],
      ];
      for (const [what, target, body, headers, status] of cases) {
        const r = await post(target, body, headers);
        assert.equal(r.res.status, status, `${what}: ${r.text}`);
        assert.equal(r.json?.id, (body as { id: unknown }).id, `${what}: ${r.text}`);
      }
      // Where no id can be read, it is null: not JSON, or a batch.
      assert.equal((await post(url, "{not json", { "mcp-session-id": sid })).json?.id, null);
      assert.equal((await post(url, [probe(20)], { "mcp-session-id": sid })).json?.id, null);
    });
  } finally {
    await proxy.stop();
  }
});
