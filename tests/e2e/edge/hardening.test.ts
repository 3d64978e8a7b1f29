/**
 * The hardened HTTP surface, end to end: header size (431), body size (413) without the process
 * growing, slow bodies (408), the Host check against DNS rebinding (421 on every route), no
 * server banner, one identical 404, `Cache-Control: no-store` on OAuth answers, and the security
 * headers of every HTML page.
 */
import assert from "node:assert/strict";
import { fixtureServer, ROOT } from "../../helpers/proxy.ts";
import { HeadlessBrowser } from "../../helpers/oauth.ts";
import { step, withLogin } from "../../helpers/login.ts";
import { assertPageHeaders, RELAXED_LIMITS } from "../../helpers/oauth-raw.ts";
import { REDIRECT_URI, signIn } from "../../helpers/oauth-flows.ts";
import {
  accessLines,
  ALLOW,
  from,
  MCP_HEADERS,
  raw,
  rpc,
  rssKiB,
  syncAccess,
  TRUST_LOOPBACK,
  UNLISTED,
  withProxy,
} from "./edge-helpers.ts";

const MiB = 1024 * 1024;

// The limits of both proxies: each test's own, none in another's way (a 2 s bodyTimeout is far
// longer than the fast uploads the other steps send).
const EDGE_LIMITS = { maxHeaderBytes: "4KiB", maxMessageIn: "64KiB", bodyTimeout: "2s" };

/** POSTs headers and part of a body over raw TCP, then stalls; the answer and its delay. */
function stall(origin: string, path: string, type: string, timeoutMs: number) {
  const host = new URL(origin).host;
  return raw(origin, [
    `POST ${path} HTTP/1.1`,
    `Host: ${host}`,
    `Content-Type: ${type}`,
    "Accept: application/json, text/event-stream",
    "Content-Length: 200",
  ], { body: '{"jsonrpc":"2.0",', timeoutMs });
}

Deno.test("hardening without login (one proxy)", async (t) => {
  await withProxy(
    { mcpServers: { fx: fixtureServer() }, limits: EDGE_LIMITS },
    // The first step measures the process's memory.
    { process: true },
    async (proxy) => {
      // First: it measures the process's growth.
      await step(
        t,
        proxy,
        "hardening: oversized bodies → 413 without the process growing (20 × 8 MiB, with and without Content-Length)",
        async () => {
          const big = new Uint8Array(8 * MiB).fill(0x20);
          const post = async (body: BodyInit) => {
            const res = await fetch(proxy.url("fx"), {
              method: "POST",
              headers: MCP_HEADERS,
              body,
            });
            const text = await res.text();
            return { status: res.status, text };
          };
          const streamed = () =>
            new ReadableStream<Uint8Array>({
              start(c) {
                for (let i = 0; i < 8; i++) c.enqueue(big.subarray(i * MiB, (i + 1) * MiB));
                c.close();
              },
            });
          // Warm up (the first requests allocate the runtime's own buffers).
          for (let i = 0; i < 3; i++) {
            assert.equal((await post(big)).status, 413);
            assert.equal((await post(streamed())).status, 413);
          }
          const before = rssKiB(proxy.process.pid);
          for (let i = 0; i < 20; i++) {
            const declared = await post(big);
            assert.equal(declared.status, 413, declared.text);
            assert.match(declared.text, /message over 65536 bytes/);
            const chunked = await post(streamed());
            assert.equal(chunked.status, 413, chunked.text);
          }
          const after = rssKiB(proxy.process.pid);
          // 320 MiB were offered; buffering even one body per request would show.
          assert.ok(
            after - before < 24 * 1024,
            `RSS grew by ${Math.round((after - before) / 1024)} MiB (${before} → ${after} KiB)`,
          );
          // Under the limit still works.
          const small = await post(rpc(1, "ping"));
          assert.notEqual(small.status, 413);
        },
      );
      await step(
        t,
        proxy,
        "hardening: a header block over limits.maxHeaderBytes → 431 on any route; far larger ones are refused too",
        async () => {
          const refused = accessLines(proxy).filter((l) => l.status === 431).length;
          const ok = await fetch(`${proxy.origin}/healthz`, {
            headers: { "x-pad": "a".repeat(3000) },
          });
          assert.equal(ok.status, 200);
          await ok.body?.cancel();
          const many: Record<string, string> = {};
          for (let i = 0; i < 40; i++) many[`x-pad-${i}`] = "b".repeat(120);
          const cases: [string, string, RequestInit][] = [
            ["one big header", "/healthz", { headers: { "x-pad": "a".repeat(5000) } }],
            ["many small headers", "/mcp/fx", { method: "POST", headers: many, body: "{}" }],
            ["a long query", `/mcp/fx?${"q".repeat(5000)}`, {}],
            ["a big cookie", "/authorize", { headers: { cookie: `c=${"z".repeat(5000)}` } }],
            ["unknown path", "/nope", { headers: { "x-pad": "a".repeat(5000) } }],
          ];
          for (const [label, path, init] of cases) {
            const res = await fetch(proxy.origin + path, init);
            assert.equal(res.status, 431, label);
            assert.deepEqual(await res.json(), { error: "headers_too_large" }, label);
          }
          // Beyond what the HTTP parser buffers at all: refused (by Deno's parser), never served.
          for (const size of [100 * 1024, MiB]) {
            const res = await fetch(`${proxy.origin}/healthz`, {
              headers: { "x-pad": "a".repeat(size) },
            })
              .catch(() => null);
            if (res) {
              await res.body?.cancel();
              assert.ok(res.status === 431 || res.status === 400, `${size}: ${res.status}`);
            }
          }
          const after = await fetch(`${proxy.origin}/healthz`);
          assert.equal(after.status, 200, "still serving");
          await after.body?.cancel();
          await syncAccess(proxy);
          assert.equal(
            accessLines(proxy).filter((l) => l.status === 431).length - refused,
            cases.length,
          );
        },
      );
      await step(
        t,
        proxy,
        "hardening: a slow MCP body → 408 within limits.bodyTimeout",
        async () => {
          const started = performance.now();
          // The client waits 10 s: an answer before that is the 2 s bodyTimeout's (the default is
          // 30 s), with room for a loaded machine.
          const answer = await stall(proxy.origin, "/mcp/fx", "application/json", 10_000);
          const took = performance.now() - started;
          assert.equal(answer.status, 408, answer.body);
          assert.ok(took >= 1900 && took < 9000, `answered after ${Math.round(took)} ms`);
          assert.equal(
            JSON.parse(answer.body).error.message,
            "the request body was not received in time",
          );
          await syncAccess(proxy);
          assert.equal(accessLines(proxy).at(-1)?.status, 408);
        },
      );
    },
  );
});

Deno.test("hardening with login (one proxy)", async (t) => {
  await withLogin({
    config: () => ({
      limits: { ...RELAXED_LIMITS, bodyTimeout: "2s" },
      network: { allow: [...ALLOW, "127.0.0.1/32"], ...TRUST_LOOPBACK },
    }),
  }, async ({ proxy }) => {
    await step(
      t,
      proxy,
      "hardening: the OAuth endpoints cap their bodies too (413 on /token, /register, /revoke)",
      async () => {
        const big = "a=" + "x".repeat(2 * MiB);
        for (
          const [path, type] of [
            ["/token", "application/x-www-form-urlencoded"],
            ["/revoke", "application/x-www-form-urlencoded"],
            ["/register", "application/json"],
          ]
        ) {
          const res = await fetch(proxy.origin + path, {
            method: "POST",
            headers: { "content-type": type },
            body: big,
          });
          const body = await res.json();
          assert.equal(res.status, 413, `${path}: ${JSON.stringify(body)}`);
          assert.equal(res.headers.get("cache-control"), "no-store", path);
        }
      },
    );
    await step(
      t,
      proxy,
      "hardening: a slow body on /token and /register → 408 within limits.bodyTimeout",
      async () => {
        // Both stall side by side: their waits overlap.
        const slow = async ([path, type]: [string, string]) => {
          const started = performance.now();
          // Bounded wait: the default 30 s would blow the suite's time budget.
          const answer = await stall(proxy.origin, path, type, 10_000).catch((e) => e as Error);
          const took = Math.round(performance.now() - started);
          assert.ok(
            !(answer instanceof Error),
            `${path}: no answer within 10 s with bodyTimeout 2s (${answer})`,
          );
          assert.equal(answer.status, 408, `${path}: ${answer.body}`);
          assert.ok(took < 9000, `${path}: answered after ${took} ms`);
        };
        await Promise.all([
          slow(["/token", "application/x-www-form-urlencoded"]),
          slow(["/register", "application/json"]),
        ]);
      },
    );
    await step(
      t,
      proxy,
      "hardening: a Host that is neither the public host nor a listen address (DNS rebinding) → 421 on every route",
      async () => {
        const { host, port } = new URL(proxy.origin);
        const routes = [
          "POST /mcp/fx",
          "GET /mcp/fx",
          "DELETE /mcp/fx",
          "GET /sse/fx",
          "POST /sse/fx/messages?sessionId=x",
          "POST /token",
          "POST /register",
          "POST /revoke",
          "GET /authorize?client_id=x",
          "POST /consent",
          "GET /auth/callback?code=x&state=y",
          "GET /.well-known/oauth-protected-resource/mcp/fx",
          "GET /.well-known/oauth-authorization-server",
          "GET /healthz",
          "GET /nope",
          "OPTIONS /mcp/fx",
        ];
        const badHosts = [
          "evil.example",
          `evil.example:${port}`,
          `127.0.0.1.evil.example:${port}`,
          `127.0.0.1:${Number(port) + 1}`,
          "127.0.0.1",
          `localhost:${Number(port) + 1}`,
          `[::2]:${port}`,
          "",
        ];
        const request = (line: string, hostHeader: string | null, extra: string[] = []) => {
          const [method, path] = line.split(" ");
          return raw(proxy.origin, [
            `${method} ${path} HTTP/1.1`,
            ...(hostHeader === null ? [] : [`Host: ${hostHeader}`]),
            "Accept: application/json, text/event-stream",
            "Content-Type: application/json",
            `Content-Length: ${method === "POST" ? 2 : 0}`,
            "Connection: close",
            ...extra,
          ], { body: method === "POST" ? "{}" : "" });
        };
        for (const bad of badHosts) {
          for (const line of routes) {
            // Also from a listed client IP: the Host check comes first.
            const answer = await request(line, bad, [`X-Forwarded-For: 203.0.113.9`]);
            assert.equal(answer.status, 421, `${line} with Host "${bad}": ${answer.body}`);
            assert.deepEqual(JSON.parse(answer.body), { error: "misdirected_request" });
          }
        }
        // HTTP/1.0 without any Host.
        const none = await raw(proxy.origin, ["GET /healthz HTTP/1.0"]);
        assert.ok(none.status === 421 || none.status === 400, `no Host: ${none.status}`);
        // The public host and this machine's names for the listen address are accepted.
        for (const good of [host, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
          const answer = await request("GET /healthz", good);
          assert.equal(answer.status, 200, `Host ${good}: ${answer.body}`);
        }
        const unlisted = await request("GET /mcp/fx", host, [`X-Forwarded-For: ${UNLISTED}`]);
        assert.equal(unlisted.status, 403, "the allow-list still applies with a good Host");
      },
    );
    await step(
      t,
      proxy,
      "hardening: no server banner, one identical 404, no-store on OAuth answers, security headers on every HTML page, no internals in bodies",
      async () => {
        const seen: { what: string; res: Response; body: string }[] = [];
        const send = async (what: string, path: string, init: RequestInit = {}) => {
          const res = await fetch(proxy.origin + path, { redirect: "manual", ...init });
          const body = await res.text();
          seen.push({ what, res, body });
          return { res, body };
        };

        // Every unknown path, whatever the method, gets the same answer.
        const unknown = [
          "/",
          "/nope",
          "/mcp",
          "/mcp/",
          "/mcp/unknown",
          "/mcp/fx/extra",
          "/mcp/fx/messages",
          "/MCP/fx",
          "/sse/unknown",
          "/sse/fx/messages/x",
          "/.well-known/",
          "/.well-known/security.txt",
          "/.well-known/oauth-protected-resource/mcp/unknown",
          "/.well-known/oauth-authorization-server/x",
          "/register/x",
          "/token/",
          "/healthz/x",
          "/favicon.ico",
          "/.env",
          "/%2e%2e/%2e%2e/etc/passwd",
          "/authorize/x",
          "/auth/callback/x",
        ];
        const shapes = new Set<string>();
        for (const path of unknown) {
          for (const method of ["GET", "POST", "PUT", "DELETE"]) {
            const { res, body } = await send(`${method} ${path}`, path, {
              method,
              body: method === "POST" || method === "PUT" ? "{}" : undefined,
              headers: from("203.0.113.9"),
            });
            assert.equal(res.status, 404, `${method} ${path}`);
            const headers = [...res.headers].filter(([k]) => k !== "date").map(([k, v]) =>
              `${k}=${v}`
            );
            shapes.add(`${headers.join("|")} ${body}`);
          }
        }
        assert.deepEqual([...shapes], [
          'content-length=21|content-type=application/json {"error":"not_found"}',
        ]);

        // OAuth JSON answers: never cached.
        const reg = await send("register", "/register", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            client_name: "hardening",
            redirect_uris: [REDIRECT_URI],
            token_endpoint_auth_method: "client_secret_post",
          }),
        });
        assert.equal(reg.res.status, 201);
        const client = JSON.parse(reg.body);
        const noStore: [string, string, RequestInit][] = [
          ["register error", "/register", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: "{not json",
          }],
          ["token error", "/token", {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: `grant_type=authorization_code&code=mop_code_x&client_id=${client.client_id}` +
              `&client_secret=${client.client_secret}&code_verifier=v&redirect_uri=${REDIRECT_URI}`,
          }],
          ["token bad client", "/token", {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: "grant_type=refresh_token&refresh_token=x&client_id=nobody",
          }],
          ["revoke", "/revoke", {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: `token=x&client_id=${client.client_id}&client_secret=${client.client_secret}`,
          }],
          ["mcp 401", "/mcp/fx", { method: "POST", headers: MCP_HEADERS, body: rpc(1, "ping") }],
          ["mcp bad token", "/mcp/fx", {
            method: "POST",
            headers: { ...MCP_HEADERS, authorization: "Bearer mop_at_nope" },
            body: rpc(1, "ping"),
          }],
        ];
        assert.equal(reg.res.headers.get("cache-control"), "no-store", "register 201");
        for (const [what, path, init] of noStore) {
          const { res } = await send(what, path, init);
          assert.ok(res.status >= 200 && res.status < 500, `${what}: ${res.status}`);
          assert.match(res.headers.get("content-type") ?? "", /^application\/json/, what);
          assert.equal(res.headers.get("cache-control"), "no-store", what);
        }
        // A real token answer.
        const browser = new HeadlessBrowser();
        const flow = await signIn(proxy, { clientId: client.client_id, browser });
        assert.ok(flow.code);
        const token = await send("token 200", "/token", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({
            grant_type: "authorization_code",
            code: flow.code,
            code_verifier: flow.verifier,
            redirect_uri: REDIRECT_URI,
            client_id: client.client_id,
            client_secret: client.client_secret,
          }).toString(),
        });
        assert.equal(token.res.status, 200, token.body);
        assert.equal(token.res.headers.get("cache-control"), "no-store");

        // HTML pages: the consent page the browser saw, and the error pages.
        assert.ok(browser.pages.length > 0, "the consent page was seen");
        for (const page of browser.pages) assertPageHeaders(page.headers);
        const pages: [string, string, RequestInit][] = [
          ["authorize error", "/authorize?client_id=unknown", {}],
          ["authorize bad redirect", `/authorize?client_id=${client.client_id}&redirect_uri=x`, {}],
          ["consent without a transaction", "/consent", {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: "txn=x&csrf=y&action=allow",
          }],
          ["callback without state", "/auth/callback?code=x", {}],
          ["callback unknown state", "/auth/callback?code=x&state=nope", {}],
        ];
        for (const [what, path, init] of pages) {
          const { res, body } = await send(what, path, init);
          assert.match(res.headers.get("content-type") ?? "", /^text\/html/, `${what}: ${body}`);
          assertPageHeaders(res.headers);
        }

        // Other edge answers, for the banner check.
        await send("403", "/mcp/fx", { headers: from(UNLISTED) });
        await send("metadata", "/.well-known/oauth-authorization-server");
        await send("health", "/healthz");

        for (const { what, res, body } of seen) {
          assert.equal(res.headers.get("server"), null, `${what}: server banner`);
          assert.equal(res.headers.get("x-powered-by"), null, `${what}: x-powered-by`);
          for (const internal of [ROOT, "file://", "node_modules", "    at "]) {
            assert.ok(!body.includes(internal), `${what}: the body shows ${internal}`);
          }
        }
        // The raw answers (421, 431) carry no banner either.
        const rebinding = await raw(proxy.origin, [
          "GET /healthz HTTP/1.1",
          "Host: evil.example",
          "Connection: close",
        ]);
        assert.equal(rebinding.status, 421);
        assert.equal(rebinding.headers.get("server"), null);
        const tooBig = await fetch(`${proxy.origin}/healthz`, {
          headers: { "x-pad": "a".repeat(20_000) },
        });
        await tooBig.body?.cancel();
        assert.equal(tooBig.status, 431);
        assert.equal(tooBig.headers.get("server"), null);
      },
    );
  });
});
