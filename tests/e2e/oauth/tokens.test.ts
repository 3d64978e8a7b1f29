/**
 * The token endpoint (RFC 6749 §4.1.3, §5, §10.5; RFC 7009; RFC 9700 §4.14.2): token responses,
 * single-use codes with the 30 s identical-request window, client authentication, refresh rotation
 * with its grace window, `/revoke`, no secret in any response or log, and a restart that loses
 * nothing. Codes are obtained by driving `/authorize` with the headless browser (PKCE S256 with a
 * verifier generated here), so every `/token` request carries exactly the parameters a test
 * chooses.
 */
import assert from "node:assert/strict";
import * as oauth from "oauth4webapi";
import { fixtureServer, type ProxyProcess, startProxy } from "../../helpers/proxy.ts";
import { connect, text } from "../../helpers/client.ts";
import {
  ALICE,
  BOB,
  connectWithLogin,
  fakeGitHub,
  GITHUB_CLIENT_SECRET,
  LOGIN_ENV,
  loginConfig,
  TestProvider,
} from "../../helpers/oauth.ts";
import {
  editRecord,
  expectAccepted,
  expectError,
  expectTokenRefused,
  expectTokens,
  inSession,
  recordTraffic,
  storeHash,
  TEST_RATES,
  type TestClient,
  TokenClient,
  withStore,
} from "../../helpers/oauth-tokens.ts";

Deno.test("token endpoint: codes, client authentication, refresh, revoke, no leaks", async (t) => {
  const traffic = recordTraffic();
  const gh = await fakeGitHub();
  let proxy: ProxyProcess | undefined;
  try {
    proxy = await startProxy({
      logLevel: "debug",
      mcpServers: { a: fixtureServer(), b: fixtureServer() },
      ...loginConfig(gh, { users: [ALICE.id, BOB.id] }),
      limits: TEST_RATES,
    }, { env: LOGIN_ENV });
    const origin = proxy.origin;
    const A = `${origin}/mcp/a`;
    const B = `${origin}/mcp/b`;
    const tc = new TokenClient(origin);
    const pub = await tc.register("none");

    await t.step("code exchange: the token response (RFC 6749 §5.1)", async () => {
      const grant = await tc.code(pub, { scope: "mcp" });
      const pair = expectTokens(await tc.exchange(pub, grant));
      // A refresh token although offline_access was not requested (Claude never asks for it).
      assert.equal(pair.scope, "mcp");
      assert.ok(pair.expires_in > 86_000 && pair.expires_in <= 86_400, String(pair.expires_in));
      assert.notEqual(pair.access_token, pair.refresh_token);
      // Opaque: no JWT structure, nothing derived from the user.
      assert.ok(!pair.access_token.includes("."));
      await expectAccepted(A, pair.access_token);
      // No scope at all defaults to mcp, and still gets a refresh token.
      const defaulted = await tc.login(pub);
      assert.equal(defaulted.scope, "mcp");
      // offline_access is kept when asked for.
      const offline = await tc.login(pub, { scope: "mcp offline_access" });
      assert.equal(offline.scope, "mcp offline_access");
    });

    await t.step("errors are 400 JSON {error, error_description}, no-store", async () => {
      expectError(await tc.token(pub, {}), "invalid_request");
      expectError(await tc.token(pub, { grant_type: "password" }), "unsupported_grant_type");
      expectError(
        await tc.token(pub, { grant_type: "client_credentials" }),
        "unsupported_grant_type",
      );
      expectError(await tc.token(pub, { grant_type: "authorization_code" }), "invalid_request");
      expectError(
        await tc.token(pub, {
          grant_type: "authorization_code",
          code: "mop_code_unknown",
          code_verifier: oauth.generateRandomCodeVerifier(),
        }),
        "invalid_grant",
      );
      expectError(await tc.token(pub, { grant_type: "refresh_token" }), "invalid_request");
      // RFC 6749 §3.1: a repeated parameter is an invalid request.
      const res = await fetch(`${origin}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `client_id=${pub.id}&grant_type=refresh_token&grant_type=refresh_token`,
      });
      const body = await res.json();
      assert.equal(res.status, 400);
      assert.equal(body.error, "invalid_request");
      // A JSON body is not a token request.
      const json = await fetch(`${origin}/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: "refresh_token", client_id: pub.id }),
      });
      assert.equal(json.status, 400);
      assert.equal((await json.json()).error, "invalid_request");
      // Other methods: JSON too, never HTML or a redirect.
      for (const path of ["/token", "/revoke"]) {
        const get = await fetch(`${origin}${path}`, { redirect: "manual" });
        assert.equal(get.status, 405);
        assert.match(get.headers.get("content-type") ?? "", /^application\/json/);
        assert.equal(typeof (await get.json()).error, "string");
      }
    });

    await t.step("code: an identical second request within 30 s gets the same tokens", async () => {
      const grant = await tc.code(pub);
      const first = await tc.exchange(pub, grant);
      const second = await tc.exchange(pub, grant);
      expectTokens(second);
      assert.deepEqual(second.body, first.body);
      await expectAccepted(A, second.body.access_token);
      expectTokens(await tc.refresh(pub, second.body.refresh_token));
    });

    await t.step("code: two identical requests at once both get the same tokens", async () => {
      const grant = await tc.code(pub);
      const [x, y] = await Promise.all([tc.exchange(pub, grant), tc.exchange(pub, grant)]);
      expectTokens(x);
      expectTokens(y);
      assert.deepEqual(x.body, y.body);
      await expectAccepted(A, x.body.access_token);
    });

    await t.step("code: reuse with another verifier revokes every token from it", async () => {
      const grant = await tc.code(pub);
      const pair = expectTokens(await tc.exchange(pub, grant));
      await expectAccepted(A, pair.access_token);
      expectError(
        await tc.exchange(pub, grant, { code_verifier: oauth.generateRandomCodeVerifier() }),
        "invalid_grant",
      );
      await expectTokenRefused(origin, "a", pair.access_token);
      expectError(await tc.refresh(pub, pair.refresh_token), "invalid_grant");
      // The identical request no longer returns the (revoked) tokens either.
      expectError(await tc.exchange(pub, grant), "invalid_grant");
    });

    await t.step(
      "code: reuse with another redirect_uri revokes tokens and successors",
      async () => {
        const grant = await tc.code(pub);
        const pair = expectTokens(await tc.exchange(pub, grant));
        const rotated = expectTokens(await tc.refresh(pub, pair.refresh_token));
        await expectAccepted(A, rotated.access_token);
        expectError(
          await tc.exchange(pub, grant, { redirect_uri: "http://127.0.0.1:10/callback" }),
          "invalid_grant",
        );
        await expectTokenRefused(origin, "a", pair.access_token);
        await expectTokenRefused(origin, "a", rotated.access_token);
        expectError(await tc.refresh(pub, rotated.refresh_token), "invalid_grant");
      },
    );

    await t.step("code: reuse by omitting redirect_uri is a reuse too", async () => {
      const grant = await tc.code(pub);
      const pair = expectTokens(await tc.exchange(pub, grant));
      expectError(await tc.exchange(pub, grant, { redirect_uri: undefined }), "invalid_grant");
      await expectTokenRefused(origin, "a", pair.access_token);
    });

    await t.step("code: PKCE and redirect_uri checks", async () => {
      // Missing verifier: invalid_request (PKCE is required).
      const g1 = await tc.code(pub);
      expectError(await tc.exchange(pub, g1, { code_verifier: undefined }), "invalid_request");
      // Wrong verifier.
      const g2 = await tc.code(pub);
      expectError(
        await tc.exchange(pub, g2, { code_verifier: oauth.generateRandomCodeVerifier() }),
        "invalid_grant",
      );
      // The right verifier afterwards does not rescue a code spent on a failed attempt.
      expectError(await tc.exchange(pub, g2), "invalid_grant");
      // A malformed verifier (too short, RFC 7636 §4.1).
      const g3 = await tc.code(pub);
      expectError(await tc.exchange(pub, g3, { code_verifier: "short" }), "invalid_grant");
      // The challenge itself is not a verifier.
      const g4 = await tc.code(pub);
      expectError(
        await tc.exchange(pub, g4, {
          code_verifier: await oauth.calculatePKCECodeChallenge(g4.verifier),
        }),
        "invalid_grant",
      );
      // redirect_uri sent but different from the authorization request's.
      const g5 = await tc.code(pub);
      expectError(
        await tc.exchange(pub, g5, { redirect_uri: "http://127.0.0.1:9/other" }),
        "invalid_grant",
      );
      // redirect_uri may be omitted (OAuth 2.1); it must match only if sent.
      const g6 = await tc.code(pub);
      expectTokens(await tc.exchange(pub, g6, { redirect_uri: undefined }));
      // A code presented by another client.
      const other = await tc.register("none");
      const g7 = await tc.code(pub);
      expectError(await tc.exchange(other, g7), "invalid_grant");
    });

    await t.step(
      "code: resource must stay within the code's audience (invalid_target)",
      async () => {
        const forA = { resource: A };
        expectError(
          await tc.exchange(pub, await tc.code(pub, forA), { resource: B }),
          "invalid_target",
        );
        expectError(
          await tc.exchange(pub, await tc.code(pub, forA), { resource: origin }),
          "invalid_target",
        );
        expectError(
          await tc.exchange(pub, await tc.code(pub, forA), {
            resource: "https://evil.example/mcp/a",
          }),
          "invalid_target",
        );
        expectError(
          await tc.exchange(pub, await tc.code(pub), { resource: `${origin}/mcp/nope` }),
          "invalid_target",
        );
        const same = expectTokens(
          await tc.exchange(pub, await tc.code(pub, forA), { resource: A }),
        );
        await expectAccepted(A, same.access_token);
        await expectTokenRefused(origin, "b", same.access_token);
      },
    );

    await t.step(
      "code: a narrower resource at /token gets a token for that server only (RFC 8707 §2.2)",
      async () => {
        // The authorization covered the whole origin; the token request names server a.
        const grant = await tc.code(pub);
        const pair = expectTokens(await tc.exchange(pub, grant, { resource: A }));
        await expectAccepted(A, pair.access_token);
        await expectTokenRefused(origin, "b", pair.access_token);
        // Its refresh token keeps the narrower audience.
        const next = expectTokens(await tc.refresh(pub, pair.refresh_token));
        await expectAccepted(A, next.access_token);
        await expectTokenRefused(origin, "b", next.access_token);
        // The identical request within 30 s gets the same answer.
        const again = await tc.exchange(pub, grant, { resource: A });
        assert.equal(again.body?.access_token, pair.access_token);
        // The same code with another resource is not identical: a reuse that revokes the grant.
        expectError(await tc.exchange(pub, grant, { resource: B }), "invalid_grant");
        await expectTokenRefused(origin, "a", pair.access_token);
        await expectTokenRefused(origin, "a", next.access_token);
      },
    );

    await t.step("client authentication: either secret method, 401 invalid_client", async () => {
      const post = await tc.register("client_secret_post");
      const basicClient = await tc.register("client_secret_basic");
      for (
        const [client, other] of [
          [post, "client_secret_basic"],
          [basicClient, "client_secret_post"],
        ] as const
      ) {
        const grant = await tc.code(client);
        // Wrong secret, posted: 401 invalid_client.
        const posted = await tc.exchange(
          client,
          grant,
          { client_id: client.id, client_secret: "mop_cs_wrong" },
          "omit",
        );
        expectError(posted, "invalid_client", 401);
        // Wrong secret with Basic: 401 invalid_client and a Basic challenge.
        const viaBasic = await tc.exchange(client, grant, {}, {
          basic: [client.id, "mop_cs_wrong"],
        });
        expectError(viaBasic, "invalid_client", 401);
        assert.match(viaBasic.headers.get("www-authenticate") ?? "", /^Basic\b/i);
        // No secret at all.
        expectError(await tc.exchange(client, grant, {}, "none"), "invalid_client", 401);
        // Failed authentication did not spend the code: the other method redeems it.
        const pair = expectTokens(await tc.exchange(client, grant, {}, other));
        await expectAccepted(A, pair.access_token);
        // Refresh with the registered method, then with the other one.
        const next = expectTokens(await tc.refresh(client, pair.refresh_token));
        expectTokens(await tc.refresh(client, next.refresh_token, {}, other));
        // Revocation authenticates the same way.
        expectError(
          await tc.revoke(client, pair.access_token, undefined, {
            basic: [client.id, "mop_cs_wrong"],
          }),
          "invalid_client",
          401,
        );
      }
      // Unknown client id: 401 invalid_client (RFC 6749 §5.2), so that clients register again.
      const ghost: TestClient = { ...pub, id: "mop_client_doesnotexist0000000000" };
      const grant = await tc.code(pub);
      expectError(await tc.exchange(ghost, grant), "invalid_client", 401);
      const ghostBasic = await tc.exchange(ghost, grant, {}, { basic: [ghost.id, "x"] });
      expectError(ghostBasic, "invalid_client", 401);
      assert.match(ghostBasic.headers.get("www-authenticate") ?? "", /^Basic\b/i);
      expectError(await tc.refresh(ghost, "mop_rt_whatever"), "invalid_client", 401);
      // A public client that sends a secret is refused, posted or Basic.
      expectError(
        await tc.exchange(pub, grant, { client_id: pub.id, client_secret: "guess" }, "omit"),
        "invalid_client",
        401,
      );
      expectError(
        await tc.exchange(pub, grant, {}, { basic: [pub.id, "guess"] }),
        "invalid_client",
        401,
      );
      // Basic for one client and client_id of another.
      expectError(
        await tc.exchange(pub, grant, { client_id: pub.id }, { basic: [post.id, post.secret!] }),
        "invalid_client",
        401,
      );
      // No client identification at all.
      expectError(await tc.exchange(pub, grant, {}, "omit"), "invalid_client", 401);
      // None of the refused requests spent the code.
      expectTokens(await tc.exchange(pub, grant));
    });

    await t.step("refresh: rotation, grace replay returns the same successor", async () => {
      const p0 = await tc.login(pub);
      const first = await tc.refresh(pub, p0.refresh_token);
      const p1 = expectTokens(first);
      assert.notEqual(p1.access_token, p0.access_token);
      assert.notEqual(p1.refresh_token, p0.refresh_token);
      assert.equal(p1.scope, p0.scope);
      await expectAccepted(A, p1.access_token);
      // Replay of the predecessor within the window: the same successor pair.
      const replay = await tc.refresh(pub, p0.refresh_token);
      expectTokens(replay);
      assert.deepEqual(replay.body, first.body);
      // Still the same after the successor was used, within 60 s ("whichever is later").
      const p2 = expectTokens(await tc.refresh(pub, p1.refresh_token));
      assert.deepEqual((await tc.refresh(pub, p0.refresh_token)).body, first.body);
      await expectAccepted(A, p2.access_token);
    });

    await t.step("refresh: concurrent refreshes with one token get the same pair", async () => {
      const p0 = await tc.login(pub);
      const answers = await Promise.all([
        tc.refresh(pub, p0.refresh_token),
        tc.refresh(pub, p0.refresh_token),
        tc.refresh(pub, p0.refresh_token),
      ]);
      for (const a of answers) expectTokens(a);
      assert.deepEqual(answers[1].body, answers[0].body);
      assert.deepEqual(answers[2].body, answers[0].body);
      await expectAccepted(A, answers[0].body.access_token);
      expectTokens(await tc.refresh(pub, answers[0].body.refresh_token));
    });

    await t.step("refresh: wrong token kinds and other clients' tokens", async () => {
      const p = await tc.login(pub);
      expectError(await tc.refresh(pub, p.access_token), "invalid_grant");
      expectError(await tc.refresh(pub, "mop_rt_unknown"), "invalid_grant");
      const other = await tc.register("none");
      expectError(await tc.refresh(other, p.refresh_token), "invalid_grant");
      // The refused attempts spent nothing.
      expectTokens(await tc.refresh(pub, p.refresh_token));
    });

    await t.step("refresh: scope may narrow, never widen (invalid_scope)", async () => {
      const p = await tc.login(pub, { scope: "mcp" });
      expectError(
        await tc.refresh(pub, p.refresh_token, { scope: "mcp offline_access" }),
        "invalid_scope",
      );
      expectError(await tc.refresh(pub, p.refresh_token, { scope: "admin" }), "invalid_scope");
      const same = expectTokens(await tc.refresh(pub, p.refresh_token, { scope: "mcp" }));
      assert.equal(same.scope, "mcp");
      const wide = await tc.login(pub, { scope: "mcp offline_access" });
      const narrowed = expectTokens(await tc.refresh(pub, wide.refresh_token, { scope: "mcp" }));
      assert.equal(narrowed.scope, "mcp");
      await expectAccepted(A, narrowed.access_token);
    });

    await t.step("refresh: resource outside the grant is invalid_target", async () => {
      const pa = await tc.login(pub, { resource: A });
      expectError(await tc.refresh(pub, pa.refresh_token, { resource: B }), "invalid_target");
      expectError(await tc.refresh(pub, pa.refresh_token, { resource: origin }), "invalid_target");
      expectError(
        await tc.refresh(pub, pa.refresh_token, { resource: "https://evil.example/mcp/a" }),
        "invalid_target",
      );
      const ok = expectTokens(await tc.refresh(pub, pa.refresh_token, { resource: A }));
      await expectAccepted(A, ok.access_token);
      await expectTokenRefused(origin, "b", ok.access_token);
      // A grant for the whole origin may be narrowed to one server.
      const po = await tc.login(pub);
      const toB = expectTokens(await tc.refresh(pub, po.refresh_token, { resource: B }));
      await expectAccepted(B, toB.access_token);
      await expectTokenRefused(origin, "a", toB.access_token);
    });

    await t.step("/revoke (RFC 7009)", async () => {
      // 200 for unknown tokens.
      for (const token of ["mop_at_unknown", "mop_rt_unknown", "garbage"]) {
        const r = await tc.revoke(pub, token);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get("cache-control"), "no-store");
        assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
      }
      expectError(await tc.revoke(pub, undefined as unknown as string), "invalid_request");
      const p = await tc.login(pub);
      // Another client cannot revoke this client's tokens (and learns nothing: 200).
      const other = await tc.register("none");
      assert.equal((await tc.revoke(other, p.access_token)).status, 200);
      assert.equal((await tc.revoke(other, p.refresh_token, "refresh_token")).status, 200);
      await expectAccepted(A, p.access_token);
      // Revoking the access token (hint accepted) stops it; the refresh token lives on.
      assert.equal((await tc.revoke(pub, p.access_token, "access_token")).status, 200);
      await expectTokenRefused(origin, "a", p.access_token);
      const p2 = expectTokens(await tc.refresh(pub, p.refresh_token));
      await expectAccepted(A, p2.access_token);
      // Revoking the refresh token ends the grant: its access token stops too.
      assert.equal((await tc.revoke(pub, p2.refresh_token, "refresh_token")).status, 200);
      await expectTokenRefused(origin, "a", p2.access_token);
      expectError(await tc.refresh(pub, p2.refresh_token), "invalid_grant");
      // A wrong hint is only a hint.
      const p3 = await tc.login(pub);
      assert.equal((await tc.revoke(pub, p3.refresh_token, "access_token")).status, 200);
      await expectTokenRefused(origin, "a", p3.access_token);
      expectError(await tc.refresh(pub, p3.refresh_token), "invalid_grant");
      const p4 = await tc.login(pub);
      assert.equal((await tc.revoke(pub, p4.access_token, "refresh_token")).status, 200);
      await expectTokenRefused(origin, "a", p4.access_token);
      // Unknown client: 401 invalid_client.
      expectError(
        await tc.revoke({ ...pub, id: "mop_client_doesnotexist0000000000" }, p4.refresh_token),
        "invalid_client",
        401,
      );
      expectTokens(await tc.refresh(pub, p4.refresh_token));
    });

    await t.step("the SDK client completes the flow and calls a tool", async () => {
      const provider = new TestProvider();
      const { client } = await connectWithLogin(A, provider);
      try {
        assert.equal(
          text(await client.callTool({ name: "echo", arguments: { text: "hi" } })),
          "hi",
        );
        tc.secrets.verifiers.add(provider.verifier);
        tc.secrets.accessTokens.add(provider.savedTokens!.access_token);
        tc.secrets.refreshTokens.add(provider.savedTokens!.refresh_token!);
        tc.secrets.codes.add(provider.code());
      } finally {
        await client.close();
      }
    });

    await t.step("no secret in any response or log", async () => {
      await proxy!.stop();
      const s = tc.secrets;
      // The checks below must have material to check.
      assert.ok(gh.issuedTokens.length > 10 && gh.issuedCodes.length > 10);
      assert.ok(s.codes.size > 10 && s.accessTokens.size > 10 && s.clientSecrets.size >= 2);
      const proxied = traffic.entries.filter((e) => e.url.startsWith(origin));
      assert.ok(proxied.length > 100, `${proxied.length} responses recorded`);
      const tokenBodies = proxied.filter((e) => new URL(e.url).pathname === "/token");
      assert.ok(
        tokenBodies.some((e) => e.body.includes([...s.accessTokens][0])),
        "recording works",
      );

      const never = [
        GITHUB_CLIENT_SECRET,
        ...gh.issuedTokens,
        ...gh.issuedCodes,
        ...s.verifiers,
      ];
      const ours = [
        ...s.accessTokens,
        ...s.refreshTokens,
        ...s.codes,
        ...s.clientSecrets,
        ...s.verifiers,
      ];
      const where = (e: { url: string; status: number }) => `${e.status} ${e.url}`;
      for (const e of proxied) {
        const path = new URL(e.url).pathname;
        const headers = e.headers.map(([k, v]) => `${k}: ${v}`).join("\n");
        const all = `${headers}\n${e.body}`;
        for (const secret of never) assert.ok(!leaks(all, secret), `leak in ${where(e)}`);
        for (const token of [...s.accessTokens, ...s.refreshTokens]) {
          // Tokens appear only in the body of a successful /token response.
          if (path === "/token" && e.status === 200) {
            assert.ok(!leaks(headers, token), `token in headers of ${where(e)}`);
          } else assert.ok(!leaks(all, token), `token in ${where(e)}`);
        }
        for (const code of s.codes) {
          // Codes appear only in the Location of the callback's redirect to the client.
          const location = e.headers.find(([k]) => k === "location")?.[1] ?? "";
          if (path === "/auth/callback" && location.includes(code)) {
            assert.ok(!leaks(e.body, code));
            assert.ok(!leaks(headers.replace(location, ""), code));
          } else assert.ok(!leaks(all, code), `code in ${where(e)}`);
        }
        for (const secret of s.clientSecrets) {
          if (path === "/register" && e.status === 201) continue;
          assert.ok(!leaks(all, secret), `client secret in ${where(e)}`);
        }
      }
      // Our tokens, codes and secrets are never forwarded to GitHub (fastmcp#5120).
      assert.ok(gh.requests.length > 20);
      for (const r of gh.requests) {
        const sent = `${r.path}${r.query}\n${JSON.stringify(r.headers)}\n${r.body ?? ""}`;
        for (const secret of ours) {
          assert.ok(!leaks(sent, secret), `sent to GitHub: ${r.method} ${r.path}`);
        }
      }
      await proxy!.waitForLog(/tokens issued/);
      const logs = `${proxy!.logs()}\n${proxy!.stdout()}`;
      for (const secret of [...never, ...ours]) {
        assert.ok(!leaks(logs, secret), `a secret (${secret.slice(0, 9)}…) is in the log`);
      }
    });
  } finally {
    traffic.restore();
    await proxy?.stop();
    await gh.close();
  }
});

Deno.test("restart: clients, tokens and grants survive; store-kept windows", async (t) => {
  const gh = await fakeGitHub();
  const dir = await Deno.makeTempDir({ prefix: "mop-tokens-" });
  const config = {
    mcpServers: { a: fixtureServer() },
    ...loginConfig(gh),
    limits: TEST_RATES,
  };
  let proxy: ProxyProcess | undefined;
  try {
    proxy = await startProxy(config, { env: LOGIN_ENV, dir });
    const origin = proxy.origin;
    const A = `${origin}/mcp/a`;
    const tc = new TokenClient(origin);
    const pub = await tc.register("none");
    const doomed = await tc.register("client_secret_post");

    // Before the restart: a session in use, a used refresh chain, an unused one, a code not
    // redeemed yet, and a client that will be gone.
    const live = await tc.login(pub);
    const session = await connect(A, { headers: { authorization: `Bearer ${live.access_token}` } });
    assert.equal(
      text(await session.client.callTool({ name: "echo", arguments: { text: "before" } })),
      "before",
    );
    const oldSession = session.sessionId()!;
    const used0 = await tc.login(pub);
    const used1 = expectTokens(await tc.refresh(pub, used0.refresh_token));
    const used2 = expectTokens(await tc.refresh(pub, used1.refresh_token));
    const idle0 = await tc.login(pub);
    const idle1 = await tc.refresh(pub, idle0.refresh_token);
    expectTokens(idle1);
    const late = await tc.code(pub);
    const doomedPair = await tc.login(doomed);

    await proxy.stop();
    await session.close();
    // While it is down, 61 s pass for the two refresh chains, the code's 5 minutes run out and
    // one client is deleted.
    await withStore(dir, async (kv) => {
      // The store holds hashes only: no token, code, secret or verifier in clear.
      const s = tc.secrets;
      const clear = [
        ...s.accessTokens,
        ...s.refreshTokens,
        ...s.codes,
        ...s.clientSecrets,
        ...s.verifiers,
        ...gh.issuedTokens,
        GITHUB_CLIENT_SECRET,
      ];
      let entries = 0;
      for await (const e of kv.list({ prefix: [] })) {
        entries++;
        const dump = JSON.stringify([e.key, e.value]);
        for (const secret of clear) {
          assert.ok(!leaks(dump, secret), `in the store at ${String(e.key[0])}`);
        }
      }
      assert.ok(entries > 20, `${entries} store entries`);
      assert.ok((await kv.get(["tokens", await storeHash(live.access_token)])).value);
      for (const rt of [used0.refresh_token, idle0.refresh_token]) {
        await editRecord<{ successor: { issuedAt: number } }>(
          kv,
          ["tokens", await storeHash(rt)],
          (r) => ({ ...r, successor: { ...r.successor, issuedAt: r.successor.issuedAt - 61_000 } }),
        );
      }
      await editRecord<{ expiresAt: number }>(
        kv,
        ["codes", await storeHash(late.code)],
        (c) => ({ ...c, expiresAt: Date.now() - 1_000 }),
      );
      assert.ok((await kv.get(["clients", doomed.id])).value);
      await kv.delete(["clients", doomed.id]);
    });
    proxy = await startProxy(proxy.config, { env: LOGIN_ENV, dir });
    assert.equal(proxy.origin, origin);

    await t.step("the old access token calls a tool; the old session is gone", async () => {
      const again = await connect(A, { headers: { authorization: `Bearer ${live.access_token}` } });
      try {
        assert.equal(
          text(await again.client.callTool({ name: "echo", arguments: { text: "after" } })),
          "after",
        );
      } finally {
        await again.close();
      }
      const res = await inSession(A, live.access_token, oldSession);
      await res.body?.cancel();
      assert.equal(res.status, 404);
    });

    await t.step("the same client id refreshes with the old refresh token", async () => {
      const next = expectTokens(await tc.refresh(pub, live.refresh_token));
      await expectAccepted(A, next.access_token);
      // And it can authorize again without registering; the browser's approval cookie is
      // still valid (the signing key was not regenerated), so no consent page is shown.
      const pagesBefore = tc.browser.pages.length;
      const fresh = await tc.login(pub);
      await expectAccepted(A, fresh.access_token);
      assert.equal(tc.browser.pages.length, pagesBefore, "no consent page after the restart");
    });

    await t.step("successor unused: the predecessor still gets it after 60 s", async () => {
      const replay = await tc.refresh(pub, idle0.refresh_token);
      expectTokens(replay);
      assert.deepEqual(replay.body, idle1.body);
    });

    await t.step("successor used and 60 s passed: replay revokes the whole grant", async () => {
      await expectAccepted(A, used2.access_token);
      expectError(await tc.refresh(pub, used0.refresh_token), "invalid_grant");
      for (const p of [used0, used1, used2]) await expectTokenRefused(origin, "a", p.access_token);
      expectError(await tc.refresh(pub, used2.refresh_token), "invalid_grant");
    });

    await t.step("an expired code is invalid_grant", async () => {
      expectError(await tc.exchange(pub, late), "invalid_grant");
    });

    await t.step("a deleted client gets 401 invalid_client and can register again", async () => {
      const refused = await tc.refresh(doomed, doomedPair.refresh_token);
      expectError(refused, "invalid_client", 401);
      const basicTry = await tc.refresh(
        doomed,
        doomedPair.refresh_token,
        {},
        "client_secret_basic",
      );
      expectError(basicTry, "invalid_client", 401);
      assert.match(basicTry.headers.get("www-authenticate") ?? "", /^Basic\b/i);
      const reborn = await tc.register("client_secret_post");
      await expectAccepted(A, (await tc.login(reborn)).access_token);
    });
  } finally {
    await proxy?.stop();
    await gh.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "time windows in real time: code replay after its window, refresh replay after the grace",
  // The windows (30 s and 60 s by default) are configured short here so the test waits seconds.
  async fn() {
    const gh = await fakeGitHub();
    const proxy = await startProxy({
      mcpServers: { a: fixtureServer() },
      ...loginConfig(gh),
      oauth: { codeReuseWindow: "3s", refreshGrace: "3s" },
    }, { env: LOGIN_ENV });
    try {
      const tc = new TokenClient(proxy.origin);
      const A = `${proxy.origin}/mcp/a`;
      const pub = await tc.register("none");
      const grant = await tc.code(pub);
      const pair = expectTokens(await tc.exchange(pub, grant));
      // Each window is timed from when its first use is known to be over, and the in-window
      // checks come right after it (a loaded machine may take seconds for a few requests).
      const redeemed = Date.now();
      // Within the window an identical redemption still gets the same answer.
      assert.equal(expectTokens(await tc.exchange(pub, grant)).access_token, pair.access_token);
      const r0 = await tc.login(pub);
      const r1 = expectTokens(await tc.refresh(pub, r0.refresh_token));
      const rotated = Date.now();
      const r2 = expectTokens(await tc.refresh(pub, r1.refresh_token));
      await sleepUntil(redeemed + 3100);
      expectError(await tc.exchange(pub, grant), "invalid_grant");
      await expectTokenRefused(proxy.origin, "a", pair.access_token);
      await expectAccepted(A, r2.access_token);
      await sleepUntil(rotated + 3100);
      expectError(await tc.refresh(pub, r0.refresh_token), "invalid_grant");
      await expectTokenRefused(proxy.origin, "a", r2.access_token);
    } finally {
      await proxy.stop();
      await gh.close();
    }
  },
});

/** Resolves at `time` (ms since the epoch), at once when it has passed. */
function sleepUntil(time: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, time - Date.now())));
}

/**
 * Whether `text` holds `secret`, or 12 characters of the start or end of its random part (a
 * truncated token in a log line is still a leak).
 */
function leaks(text: string, secret: string): boolean {
  const random = secret.replace(/^(mop_at_|mop_rt_|mop_code_|mop_cs_|gho_|ghr_)/, "");
  const pieces = random.length >= 24 ? [random.slice(0, 12), random.slice(-12)] : [];
  return [secret, ...pieces].some((piece) => text.includes(piece));
}
