/**
 * The resource-server check on every MCP request (RFC 6750 §2.1 and §3, RFC 8707 audience, RFC 9728
 * §5.1 challenge; https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization) and
 * sessions bound to the user
 * (https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices): the
 * token comes only from `Authorization: Bearer`, is one of ours, unexpired, unrevoked and for this
 * endpoint; every 401 names the protected-resource metadata; another user's token never reaches a
 * session.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../../helpers/proxy.ts";
import { connect, text } from "../../helpers/client.ts";
import {
  ALICE,
  BOB,
  fakeGitHub,
  HeadlessBrowser,
  LOGIN_ENV,
  loginConfig,
} from "../../helpers/oauth.ts";
import {
  bearerChallenge,
  expectAccepted,
  expectRefused,
  expectTokenRefused,
  expectTokens,
  inSession,
  probe,
  readAnswer,
  TEST_RATES,
  TokenClient,
} from "../../helpers/oauth-tokens.ts";

Deno.test("bearer checks and user-bound sessions at /mcp/<name>", async (t) => {
  const gh = await fakeGitHub();
  let proxy: ProxyProcess | undefined;
  try {
    proxy = await startProxy({
      mcpServers: { a: fixtureServer(), b: fixtureServer() },
      ...loginConfig(gh, { users: [ALICE.id, BOB.id] }),
      limits: TEST_RATES,
    }, { env: LOGIN_ENV });
    const origin = proxy.origin;
    const A = `${origin}/mcp/a`;
    const B = `${origin}/mcp/b`;
    const tc = new TokenClient(origin);
    const pub = await tc.register("none");
    const alice = await tc.login(pub);

    await t.step("no token: 401 without error, on every method and the legacy SSE", async () => {
      expectRefused(await probe(A), origin, "a");
      expectRefused(await probe(B), origin, "b");
      expectRefused(await probe(A, undefined, { method: "GET" }), origin, "a");
      expectRefused(await probe(A, undefined, { method: "DELETE" }), origin, "a");
      expectRefused(
        await probe(A, undefined, { method: "GET", headers: { "mcp-session-id": "x" } }),
        origin,
        "a",
      );
      const sse = await readAnswer(
        await fetch(`${origin}/sse/a`, { headers: { accept: "text/event-stream" } }),
      );
      expectRefused(sse, origin, "a", undefined, "sse");
      const message = await readAnswer(
        await fetch(`${origin}/sse/a/messages?sessionId=abc`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
        }),
      );
      expectRefused(message, origin, "a", undefined, "sse");
    });

    await t.step("a token in the query string is not accepted", async () => {
      const url = `${A}?access_token=${encodeURIComponent(alice.access_token)}`;
      expectRefused(await probe(url), origin, "a");
      const sse = await readAnswer(
        await fetch(`${origin}/sse/a?access_token=${alice.access_token}`, {
          headers: { accept: "text/event-stream" },
        }),
      );
      expectRefused(sse, origin, "a", undefined, "sse");
      // The same token in the header works, so the refusal was about where it was.
      await expectAccepted(A, alice.access_token);
    });

    await t.step("a malformed Authorization header is invalid_token", async () => {
      for (
        const header of [
          "Bearer",
          "Bearer ",
          `Basic ${btoa(`${pub.id}:x`)}`,
          `Token ${alice.access_token}`,
          `Bearer ${alice.access_token} extra`,
          `Bearer ${alice.access_token},Bearer ${alice.access_token}`,
          `Bearer "${alice.access_token}"`,
          `Bearer ${alice.access_token}x`,
          `Bearer ${alice.access_token.slice(0, -1)}`,
          "Bearer mop_at_",
          `Bearer mop_at_${"A".repeat(43)}`,
        ]
      ) {
        const answer = await probe(A, header);
        try {
          expectRefused(answer, origin, "a", "invalid_token");
        } catch (error) {
          throw new Error(`Authorization: ${header.slice(0, 30)}…`, { cause: error });
        }
      }
      // The scheme is case-insensitive (RFC 7235 §2.1).
      assert.equal((await probe(A, `bearer ${alice.access_token}`)).status, 200);
    });

    await t.step("a GitHub token is never accepted (no token passthrough)", async () => {
      assert.ok(gh.issuedTokens.length > 0);
      for (const token of gh.issuedTokens) {
        assert.match(token, /^gho_/);
        await expectTokenRefused(origin, "a", token);
      }
    });

    await t.step("a refresh token or a code is not an access token", async () => {
      await expectTokenRefused(origin, "a", alice.refresh_token);
      const grant = await tc.code(pub);
      await expectTokenRefused(origin, "a", grant.code);
      // The refusal did not spend the code; its refresh token still refreshes.
      const pair = expectTokens(await tc.exchange(pub, grant));
      await expectTokenRefused(origin, "a", pair.refresh_token);
      expectTokens(await tc.refresh(pub, pair.refresh_token));
    });

    await t.step("a token revoked with /revoke is refused at once", async () => {
      const pair = await tc.login(pub);
      await expectAccepted(A, pair.access_token);
      assert.equal((await tc.revoke(pub, pair.access_token)).status, 200);
      await expectTokenRefused(origin, "a", pair.access_token);
      await expectTokenRefused(origin, "b", pair.access_token);
    });

    await t.step(
      "audience: a server's token works only there; the origin's everywhere",
      async () => {
        const forA = await tc.login(pub, { resource: A });
        await expectAccepted(A, forA.access_token);
        await expectTokenRefused(origin, "b", forA.access_token);
        const forB = await tc.login(pub, { resource: B });
        await expectAccepted(B, forB.access_token);
        await expectTokenRefused(origin, "a", forB.access_token);
        const everywhere = await tc.login(pub, { resource: origin });
        await expectAccepted(A, everywhere.access_token);
        await expectAccepted(B, everywhere.access_token);
        // No resource at all means the origin.
        await expectAccepted(A, alice.access_token);
        await expectAccepted(B, alice.access_token);
        // The refusal also covers the legacy SSE endpoint.
        const sse = await readAnswer(
          await fetch(`${origin}/sse/b`, {
            headers: { accept: "text/event-stream", authorization: `Bearer ${forA.access_token}` },
          }),
        );
        expectRefused(sse, origin, "b", "invalid_token", "sse");
      },
    );

    await t.step(
      "a token without the mcp scope is 403 insufficient_scope (RFC 6750 §3.1)",
      async () => {
        const narrow = await tc.login(pub, { scope: "offline_access" });
        assert.equal(narrow.scope, "offline_access");
        const answer = await probe(A, `Bearer ${narrow.access_token}`);
        assert.equal(answer.status, 403, answer.text);
        const params = bearerChallenge(answer.headers.get("www-authenticate"));
        assert.equal(params.error, "insufficient_scope");
        assert.equal(
          params.resource_metadata,
          `${origin}/.well-known/oauth-protected-resource/mcp/a`,
        );
        // The needed scope plus the granted ones, except offline_access, which never appears in
        // a challenge: here that is exactly "mcp".
        assert.equal(params.scope, "mcp");
      },
    );

    // Two users on the same OAuth client, so only the user differs.
    const bobBrowser = new HeadlessBrowser();
    gh.setCurrentUser(BOB.id);
    const bob = await tc.login(pub, { browser: bobBrowser });
    gh.setCurrentUser(ALICE.id);
    const aliceSession = await connect(A, {
      name: "alice-1",
      headers: { authorization: `Bearer ${alice.access_token}` },
    });
    try {
      await t.step(
        "a session id with another user's token is 404 (session hijacking)",
        async () => {
          const sessionId = aliceSession.sessionId()!;
          assert.ok(sessionId);
          const pidAlice = text(await aliceSession.client.callTool({ name: "pid", arguments: {} }));
          const asBob = (method: string, body?: unknown) =>
            inSession(A, bob.access_token, sessionId, method, body).then(readAnswer);
          const call = await asBob("POST", {
            jsonrpc: "2.0",
            id: 7,
            method: "tools/call",
            params: { name: "pid", arguments: {} },
          });
          assert.equal(call.status, 404, call.text);
          assert.ok(!call.text.includes(pidAlice), "nothing of Alice's child reached Bob");
          assert.equal((await asBob("GET")).status, 404);
          assert.equal((await asBob("DELETE")).status, 404);
          // Bob's tries did not end or disturb Alice's session.
          assert.equal(
            text(await aliceSession.client.callTool({ name: "echo", arguments: { text: "mine" } })),
            "mine",
          );
          // Bob's token itself is fine: the 404 was about the session.
          await expectAccepted(A, bob.access_token);
          // Alice's own token from another client is not her session either (user, client, server).
          const otherClient = await tc.register("none");
          const aliceElsewhere = await tc.login(otherClient);
          const res = await inSession(A, aliceElsewhere.access_token, sessionId);
          await res.body?.cancel();
          assert.equal(res.status, 404);
          // Nor is it a session of another server.
          const onB = await inSession(B, alice.access_token, sessionId);
          await onB.body?.cancel();
          assert.equal(onB.status, 404);
        },
      );

      await t.step(
        "per-user mode: one child per GitHub user, shared by their sessions",
        async () => {
          const pid = async (token: string, name: string) => {
            const s = await connect(A, { name, headers: { authorization: `Bearer ${token}` } });
            try {
              return text(await s.client.callTool({ name: "pid", arguments: {} }));
            } finally {
              await s.close();
            }
          };
          const alice1 = text(await aliceSession.client.callTool({ name: "pid", arguments: {} }));
          const alice2 = await pid(alice.access_token, "alice-2");
          const bob1 = await pid(bob.access_token, "bob-1");
          const bob2 = await pid(bob.access_token, "bob-2");
          assert.match(alice1, /^\d+$/);
          assert.match(bob1, /^\d+$/);
          assert.equal(alice2, alice1, "Alice's two sessions share her child");
          assert.equal(bob2, bob1, "Bob's two sessions share his child");
          assert.notEqual(bob1, alice1, "Alice and Bob have different children");
        },
      );
    } finally {
      await aliceSession.close();
    }
  } finally {
    await proxy?.stop();
    await gh.close();
  }
});

Deno.test("an expired access token is invalid_token; its refresh token still works", async () => {
  const gh = await fakeGitHub();
  const proxy = await startProxy({
    mcpServers: { a: fixtureServer() },
    ...loginConfig(gh),
    limits: TEST_RATES,
    oauth: { accessTokenTtl: "2s" },
  }, { env: LOGIN_ENV });
  try {
    const tc = new TokenClient(proxy.origin);
    const A = `${proxy.origin}/mcp/a`;
    const pub = await tc.register("none");
    const pair = await tc.login(pub);
    // The token was issued before this instant, so it has expired 2 s after it.
    const issued = Date.now();
    assert.ok(pair.expires_in <= 2, `expires_in ${pair.expires_in}`);
    await expectAccepted(A, pair.access_token);
    await new Promise((r) => setTimeout(r, Math.max(0, issued + 2_100 - Date.now())));
    await expectTokenRefused(proxy.origin, "a", pair.access_token);
    const next = expectTokens(await tc.refresh(pub, pair.refresh_token));
    await expectAccepted(A, next.access_token);
  } finally {
    await proxy.stop();
    await gh.close();
  }
});
