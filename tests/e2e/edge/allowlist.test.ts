/**
 * The source-IP allow-list per endpoint class, end to end with login: the machine-to-machine
 * endpoints (MCP, legacy SSE, /token, /register, /revoke) refuse an unlisted client IP with 403
 * `ip_not_allowed` naming the address seen, never 401; a listed IP still needs a token; the browser
 * endpoints are never blocked; the metadata documents are open unless `protectMetadata`; IPv6 and
 * IPv4-mapped IPv6 clients are matched and named canonically. Client IPs are simulated with
 * X-Forwarded-For from the trusted loopback peer.
 */
import assert from "node:assert/strict";
import { fixtureServer } from "../../helpers/proxy.ts";
import { fakeGitHub, LOGIN_ENV, loginConfig } from "../../helpers/oauth.ts";
import { RELAXED_LIMITS } from "../../helpers/oauth-raw.ts";
import { pkce, REDIRECT_URI, signIn } from "../../helpers/oauth-flows.ts";
import {
  accessLines,
  ALLOW,
  assertBlocked,
  from,
  LISTED,
  LISTED_V6,
  MCP_HEADERS,
  rpc,
  syncAccess,
  TRUST_LOOPBACK,
  UNLISTED,
  UNLISTED_V6,
  withProxy,
} from "./edge-helpers.ts";
import { step, withLogin } from "../../helpers/login.ts";

const INIT = rpc(1, "initialize", {
  protocolVersion: "2025-06-18",
  capabilities: {},
  clientInfo: { name: "allowlist-test", version: "1.0.0" },
});
const FORM = { "content-type": "application/x-www-form-urlencoded" };

/** Every request of a guarded endpoint class, as [label, path, init]. */
function guardedRequests(headers: Record<string, string>): [string, string, RequestInit][] {
  const mcp = { ...MCP_HEADERS, ...headers };
  return [
    ["POST /mcp", "/mcp/fx", { method: "POST", headers: mcp, body: INIT }],
    ["POST /mcp with a token", "/mcp/fx", {
      method: "POST",
      headers: { ...mcp, authorization: "Bearer mop_at_not-a-real-token" },
      body: INIT,
    }],
    ["GET /mcp", "/mcp/fx", { headers: { ...mcp, "mcp-session-id": "s-1" } }],
    ["DELETE /mcp", "/mcp/fx", { method: "DELETE", headers: { ...mcp, "mcp-session-id": "s-1" } }],
    ["GET /sse", "/sse/fx", { headers: { accept: "text/event-stream", ...headers } }],
    ["POST /sse messages", "/sse/fx/messages?sessionId=s-1", {
      method: "POST",
      headers: mcp,
      body: rpc(2, "ping"),
    }],
    ["POST /token", "/token", {
      method: "POST",
      headers: { ...FORM, ...headers },
      body: "grant_type=authorization_code&code=x&client_id=y",
    }],
    ["POST /register", "/register", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ client_name: "x", redirect_uris: [REDIRECT_URI] }),
    }],
    ["POST /revoke", "/revoke", {
      method: "POST",
      headers: { ...FORM, ...headers },
      body: "token=x&client_id=y",
    }],
  ];
}

// The first two tests share one proxy (the same config) as steps.
Deno.test("allow-list with login (one proxy)", async (t) => {
  await withLogin({
    config: () => ({ limits: RELAXED_LIMITS, network: { allow: ALLOW, ...TRUST_LOOPBACK } }),
  }, async ({ proxy }) => {
    await step(
      t,
      proxy,
      "allow-list: unlisted IPs get 403 ip_not_allowed (never 401) on MCP, legacy SSE, /token, /register, /revoke; listed IPs still need a token",
      async () => {
        const unlisted: [string, string][] = [
          [UNLISTED, UNLISTED],
          [UNLISTED_V6, UNLISTED_V6],
          // Canonical forms: upper case and uncompressed IPv6, IPv4-mapped IPv6 folded to IPv4.
          ["2001:DB8:1:0:0:0:0:9", "2001:db8:1::9"],
          [`::ffff:${UNLISTED}`, UNLISTED],
          ["fe80::1%eth0", "fe80::1"],
        ];
        for (const [sent, seen] of unlisted) {
          for (const [label, path, init] of guardedRequests(from(sent))) {
            await assertBlocked(
              await fetch(proxy.origin + path, init),
              seen,
              `${label} from ${sent}`,
            );
          }
        }
        await syncAccess(proxy);
        const blocked = accessLines(proxy).filter((l) => l.status === 403);
        assert.equal(blocked.length, unlisted.length * 9);
        assert.deepEqual(
          [...new Set(blocked.map((l) => l.route))].sort(),
          ["mcp", "register", "revoke", "sse", "token"],
        );
        assert.ok(blocked.every((l) => l.peer === "127.0.0.1" && l.user_id === undefined));

        // The list only narrows: a listed address (v4, v6, mapped) meets the OAuth rules as usual.
        for (const ip of [LISTED, LISTED_V6, `::ffff:${LISTED}`]) {
          // /token and /revoke: 401 invalid_client (the client is unknown), /register: 201.
          const expected = [401, 401, 401, 401, 401, 401, 401, 201, 401];
          const got: number[] = [];
          for (const [label, path, init] of guardedRequests(from(ip))) {
            const res = await fetch(proxy.origin + path, init);
            const text = await res.text();
            got.push(res.status);
            assert.doesNotMatch(text, /ip_not_allowed/, `${label} from ${ip}`);
            if (path.startsWith("/mcp") || path.startsWith("/sse")) {
              assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer /, label);
            }
          }
          assert.deepEqual(got, expected, `statuses from ${ip}`);
        }

        // The metadata documents are public by default (they help diagnosis).
        for (
          const path of [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp/fx",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
          ]
        ) {
          const res = await fetch(proxy.origin + path, { headers: from(UNLISTED) });
          assert.equal(res.status, 200, path);
          await res.json();
        }
        // The health check is not guarded either, and tells a remote caller nothing more.
        const health = await fetch(`${proxy.origin}/healthz`, { headers: from(UNLISTED) });
        assert.deepEqual(await health.json(), { status: "ok" });
      },
    );
    await step(
      t,
      proxy,
      "allow-list: /authorize, /consent and /auth/callback are never blocked; a token works only from a listed IP",
      async () => {
        // Registration is guarded: do it from a listed address (the client's back end).
        const reg = await fetch(`${proxy.origin}/register`, {
          method: "POST",
          headers: { "content-type": "application/json", ...from(LISTED) },
          body: JSON.stringify({
            client_name: "allow-list client",
            redirect_uris: [REDIRECT_URI],
            token_endpoint_auth_method: "none",
            grant_types: ["authorization_code", "refresh_token"],
          }),
        });
        assert.equal(reg.status, 201);
        const clientId = (await reg.json()).client_id;

        // The owner's browser sends no forwarded header: its address is the peer, 127.0.0.1,
        // which is NOT on the list. The whole sign-in still works.
        await syncAccess(proxy);
        const before = accessLines(proxy).length;
        const flow = await signIn(proxy, { clientId });
        assert.ok(flow.code, `a code: ${flow.redirect?.href ?? flow.page?.html}`);
        await syncAccess(proxy);
        const browserLines = accessLines(proxy).slice(before);
        assert.deepEqual(
          browserLines.map((l) => `${l.route} ${l.ip} ${l.status}`),
          ["authorize 127.0.0.1 200", "consent 127.0.0.1 303", "callback 127.0.0.1 302"],
        );

        // The code exchange is machine-to-machine: refused from the unlisted browser address…
        const exchange = (headers: Record<string, string>) =>
          fetch(`${proxy.origin}/token`, {
            method: "POST",
            headers: { ...FORM, ...headers },
            body: new URLSearchParams({
              grant_type: "authorization_code",
              code: flow.code!,
              code_verifier: flow.verifier,
              redirect_uri: REDIRECT_URI,
              client_id: clientId,
            }).toString(),
          });
        await assertBlocked(await exchange({}), "127.0.0.1", "/token from the browser's address");
        // …and the refusal did not spend the code.
        const tokenRes = await exchange(from(LISTED));
        assert.equal(tokenRes.status, 200);
        const tokens = await tokenRes.json();

        // A valid token from an unlisted IP: 403, not 401 (no OAuth loop) and not 200.
        const call = (headers: Record<string, string>) =>
          fetch(proxy.url("fx"), {
            method: "POST",
            headers: { ...MCP_HEADERS, authorization: `Bearer ${tokens.access_token}`, ...headers },
            body: INIT,
          });
        await assertBlocked(await call(from(UNLISTED)), UNLISTED, "valid token, unlisted IP");
        await assertBlocked(await call({}), "127.0.0.1", "valid token, no forwarded header");
        const ok = await call(from(LISTED));
        await ok.body?.cancel();
        assert.equal(ok.status, 200);
        assert.ok(ok.headers.get("mcp-session-id"));

        // Revocation is guarded too: refused from an unlisted IP (the token keeps working)…
        const revoke = (headers: Record<string, string>) =>
          fetch(`${proxy.origin}/revoke`, {
            method: "POST",
            headers: { ...FORM, ...headers },
            body: new URLSearchParams({ token: tokens.access_token, client_id: clientId })
              .toString(),
          });
        await assertBlocked(await revoke(from(UNLISTED)), UNLISTED, "/revoke unlisted");
        const still = await call(from(LISTED));
        await still.body?.cancel();
        assert.equal(still.status, 200);
        // …and honoured from a listed one.
        const revoked = await revoke(from(LISTED));
        await revoked.body?.cancel();
        assert.equal(revoked.status, 200);
        const gone = await call(from(LISTED));
        await gone.body?.cancel();
        assert.equal(gone.status, 401);
      },
    );
  });
});

Deno.test("allow-list: protectMetadata puts the metadata documents behind the list; browser endpoints stay open", async () => {
  const gh = await fakeGitHub();
  try {
    await withProxy(
      {
        mcpServers: { fx: fixtureServer() },
        ...loginConfig(gh),
        limits: RELAXED_LIMITS,
        network: { allow: ALLOW, ...TRUST_LOOPBACK, protectMetadata: true },
      },
      { env: LOGIN_ENV },
      async (proxy) => {
        const paths = [
          "/.well-known/oauth-protected-resource",
          "/.well-known/oauth-protected-resource/mcp/fx",
          "/.well-known/oauth-authorization-server",
          "/.well-known/openid-configuration",
        ];
        for (const path of paths) {
          await assertBlocked(
            await fetch(proxy.origin + path, { headers: from(UNLISTED) }),
            UNLISTED,
            path,
          );
          await assertBlocked(
            await fetch(proxy.origin + path, { headers: from(`::ffff:${UNLISTED}`) }),
            UNLISTED,
            `${path} (mapped)`,
          );
          const ok = await fetch(proxy.origin + path, { headers: from(LISTED_V6) });
          assert.equal(ok.status, 200, path);
          await ok.body?.cancel();
        }
        // The browser endpoints answer an unlisted address (an error page, not a 403).
        const { challenge } = await pkce();
        const authorize = await fetch(
          `${proxy.origin}/authorize?response_type=code&client_id=unknown&code_challenge=${challenge}`,
          { headers: from(UNLISTED), redirect: "manual" },
        );
        const page = await authorize.text();
        assert.equal(authorize.status, 400);
        assert.match(authorize.headers.get("content-type") ?? "", /^text\/html/);
        assert.doesNotMatch(page, /ip_not_allowed/);
        const consent = await fetch(`${proxy.origin}/consent`, {
          method: "POST",
          headers: { ...FORM, ...from(UNLISTED) },
          body: "txn=x&csrf=y&action=allow",
          redirect: "manual",
        });
        assert.doesNotMatch(await consent.text(), /ip_not_allowed/);
        assert.notEqual(consent.status, 403);
        const callback = await fetch(`${proxy.origin}/auth/callback?code=x&state=y`, {
          headers: from(UNLISTED),
          redirect: "manual",
        });
        assert.doesNotMatch(await callback.text(), /ip_not_allowed/);
        assert.notEqual(callback.status, 403);
      },
    );
  } finally {
    await gh.close();
  }
});
