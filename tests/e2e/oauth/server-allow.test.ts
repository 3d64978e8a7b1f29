/**
 * Per-server `allow`, end to end against the fake GitHub: a server someone may not use answers
 * exactly as an unknown server (both protocol eras and the legacy endpoint), sign-in for it gets
 * the unknown-resource error, a refresh after losing it is refused and revokes a grant for that
 * server alone, SIGHUP narrows it for live tokens, and the consent page names only open servers.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess } from "../../helpers/proxy.ts";
import { ALICE, BOB } from "../../helpers/oauth.ts";
import { type LoginOptions, step, withLogin } from "../../helpers/login.ts";
import {
  countLogLines,
  mcpInitialize,
  redeem,
  refresh,
  reloadConfig,
  signIn,
  signInForTokens,
  waitForNewLog,
} from "../../helpers/oauth-flows.ts";
import { initializeBody } from "../../helpers/oauth-tokens.ts";

/** In the global list and in the team acme/ops (the other tests' alice is in neither team). */
const CAROL = { id: 7001, login: "carol" };

/**
 * Three servers: `fx` open to the global list (alice, bob, carol), `files` for alice only, `ops`
 * for the team acme/ops (carol).
 */
const SERVERS: LoginOptions = {
  allow: { users: [ALICE.id, BOB.id, CAROL.id] },
  config: () => ({
    mcpServers: {
      fx: fixtureServer(),
      files: fixtureServer({ allow: { users: [ALICE.login] } }),
      ops: fixtureServer({ allow: { teams: ["acme/ops"] } }),
    },
  }),
  setup: (gh) => {
    gh.addUser(CAROL);
    // Only active org members see the org's teams.
    gh.setOrgMembership("acme", CAROL.id, "active");
    gh.setTeamMembership("acme", "ops", CAROL.id, "active");
  },
};

/** Rewrites `files.allow` and waits until the proxy took it. */
async function allowFiles(proxy: ProxyProcess, users: (string | number)[]): Promise<void> {
  const reloaded = countLogLines(proxy, /allow-list reloaded/);
  await reloadConfig(proxy, (c) => {
    const servers = c.mcpServers as Record<string, Record<string, unknown>>;
    servers.files.allow = { users };
  });
  await waitForNewLog(proxy, /allow-list reloaded/, reloaded);
}

/** Everything a response says, but the Date header. */
async function snapshot(res: Response) {
  const headers = [...res.headers].filter(([name]) => name !== "date");
  return { status: res.status, headers, body: await res.text() };
}

/** The same request to `path` and to an unknown server's path must get byte-identical answers. */
async function assertLikeUnknown(
  proxy: ProxyProcess,
  token: string,
  path: (server: string) => string,
  init: RequestInit,
): Promise<void> {
  const send = (server: string) => {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${token}`);
    return fetch(`${proxy.origin}${path(server)}`, { ...init, headers });
  };
  const hidden = await snapshot(await send("files"));
  const unknown = await snapshot(await send("no-such-server"));
  assert.equal(hidden.status, 404, `${path("files")}: ${hidden.body}`);
  assert.deepEqual(hidden, unknown, path("files"));
}

const INITIALIZE = initializeBody("server-allow");

// The tests share one proxy as steps; the two that rewrite files.allow come last.
Deno.test("server allow (one proxy)", async (t) => {
  await withLogin(SERVERS, async ({ gh, proxy }) => {
    await step(
      t,
      proxy,
      "server allow on use: a server someone may not use answers exactly as an unknown one, in both eras and on the legacy endpoint; others keep working",
      async () => {
        gh.setCurrentUser(BOB.id);
        const { tokens } = await signInForTokens(proxy);
        const bob = tokens.access_token;
        assert.equal((await mcpInitialize(proxy.url("fx"), bob)).status, 200, "an open server");
        const json = {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        };
        // The 2025 era (streamable HTTP), with and without an allowed Origin (no CORS hint either).
        await assertLikeUnknown(proxy, bob, (s) => `/mcp/${s}`, {
          method: "POST",
          headers: json,
          body: INITIALIZE,
        });
        await assertLikeUnknown(proxy, bob, (s) => `/mcp/${s}`, {
          method: "POST",
          headers: { ...json, origin: proxy.origin },
          body: INITIALIZE,
        });
        // The 2026-07-28 era (sessionless), a tools/list.
        await assertLikeUnknown(proxy, bob, (s) => `/mcp/${s}`, {
          method: "POST",
          headers: { ...json, "mcp-protocol-version": "2026-07-28" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list", params: {} }),
        });
        // The legacy HTTP+SSE endpoint and its POST endpoint, and a GET stream on /mcp.
        await assertLikeUnknown(proxy, bob, (s) => `/sse/${s}`, {
          headers: { accept: "text/event-stream" },
        });
        await assertLikeUnknown(proxy, bob, (s) => `/sse/${s}/messages?sessionId=x`, {
          method: "POST",
          headers: json,
          body: INITIALIZE,
        });
        await assertLikeUnknown(proxy, bob, (s) => `/mcp/${s}`, {
          headers: { accept: "text/event-stream" },
        });
        await proxy.waitForLog(/refused on use by mcpServers\.files\.allow user_id=1001/);
        // Not revoked: the grant is for the whole origin, and still serves the open server.
        assert.equal((await mcpInitialize(proxy.url("fx"), bob)).status, 200);

        gh.setCurrentUser(ALICE.id);
        const alice = (await signInForTokens(proxy)).tokens.access_token;
        assert.equal((await mcpInitialize(proxy.url("files"), alice)).status, 200, "alice may");
        assert.equal((await mcpInitialize(proxy.url("ops"), alice)).status, 404, "not in acme/ops");
      },
    );

    await step(
      t,
      proxy,
      "server allow at sign-in: a sign-in for a server the person may not use gets the unknown-resource error and no code; the GitHub token is revoked",
      async () => {
        gh.setCurrentUser(BOB.id);
        const hidden = await signIn(proxy, { resource: proxy.url("files") });
        assert.equal(hidden.code, undefined, "no code");
        assert.ok(hidden.redirect, `redirected to the client, not a page: ${hidden.page?.html}`);
        const unknown = await signIn(proxy, { resource: `${proxy.origin}/mcp/no-such-server` });
        assert.ok(unknown.redirect);
        const params = (u: URL) => {
          const q = new URLSearchParams(u.search);
          q.delete("state");
          return [...q].sort();
        };
        assert.deepEqual(params(hidden.redirect), params(unknown.redirect));
        assert.equal(hidden.redirect.searchParams.get("error"), "invalid_target");
        assert.equal(hidden.redirect.searchParams.get("state"), hidden.state);
        const githubToken = gh.tokenRequests.at(-1)!.accessToken!;
        assert.equal(gh.tokenInfo(githubToken)?.revoked, true, "the GitHub token is revoked");
        await proxy.waitForLog(/sign-in refused: not on mcpServers\.files\.allow user_id=1001/);

        // Bob may still sign in for the open server, and alice for hers.
        assert.ok((await signIn(proxy, { resource: proxy.url("fx") })).code);
        gh.setCurrentUser(ALICE.id);
        const alice = await signInForTokens(proxy, { resource: proxy.url("files") });
        assert.equal(
          (await mcpInitialize(proxy.url("files"), alice.tokens.access_token)).status,
          200,
        );
      },
    );

    await step(
      t,
      proxy,
      "server allow at refresh: leaving the team refuses the refresh of a grant for that server and revokes it; a grant for the whole origin keeps its other servers",
      async () => {
        gh.setCurrentUser(CAROL.id);
        const bound = await signInForTokens(proxy, { resource: proxy.url("ops") });
        const wide = await signInForTokens(proxy);
        const url = proxy.url("ops");
        assert.equal((await mcpInitialize(url, bound.tokens.access_token)).status, 200);
        let res = await refresh(
          proxy.origin,
          { clientId: bound.clientId },
          bound.tokens.refresh_token,
        );
        assert.equal(res.status, 200, "still in the team");
        const renewed = await res.json();
        // A token for one server of the whole-origin grant: fine while in the team.
        res = await narrowed(proxy, wide.clientId, wide.tokens.refresh_token, url);
        assert.equal(res.status, 200, await res.clone().text());
        const wideRefresh = (await res.json()).refresh_token;
        // On use the team decision is cached (at most 15 minutes): requests do not reach GitHub.
        const calls = gh.apiRequests.length;
        for (let i = 0; i < 3; i++) {
          assert.equal((await mcpInitialize(url, renewed.access_token)).status, 200);
        }
        assert.equal(gh.apiRequests.length, calls, "no GitHub call per MCP request");

        gh.setTeamMembership("acme", "ops", CAROL.id, null);
        res = await refresh(proxy.origin, { clientId: bound.clientId }, renewed.refresh_token);
        assert.equal(res.status, 400);
        assert.equal((await res.json()).error, "invalid_grant");
        await proxy.waitForLog(
          /refused at refresh by mcpServers\.ops\.allow; grant revoked user_id=7001/,
        );
        const after = await mcpInitialize(url, renewed.access_token);
        assert.equal(after.status, 401, "the grant's tokens are revoked");

        // The whole-origin grant: a token for ops is refused as an unknown resource would be...
        res = await narrowed(proxy, wide.clientId, wideRefresh, url);
        assert.equal(res.status, 400);
        assert.deepEqual(await res.json(), {
          error: "invalid_target",
          error_description: "resource is not within the grant",
        });
        const unknown = await narrowed(
          proxy,
          wide.clientId,
          wideRefresh,
          `${proxy.origin}/mcp/nope`,
        );
        assert.deepEqual(await unknown.json(), {
          error: "invalid_target",
          error_description: "resource is not within the grant",
        });
        // ...while the grant itself stays, for the servers carol may still use (this refresh token
        // was issued for ops: it asks for the whole origin again).
        res = await narrowed(proxy, wide.clientId, wideRefresh, proxy.origin);
        assert.equal(res.status, 200);
        const fresh = await res.json();
        assert.equal((await mcpInitialize(proxy.url("fx"), fresh.access_token)).status, 200);
        assert.equal((await mcpInitialize(url, fresh.access_token)).status, 404);
      },
    );

    await step(
      t,
      proxy,
      "server allow on the consent page: a request for the whole origin names only the open servers; a request for one server names it",
      async () => {
        const servers = (html: string) => /Servers: (.*?)<br>/.exec(html)?.[1];
        const wide = await signIn(proxy);
        const consent = wide.browser.pages.find((p) => p.html.includes("Servers:"))!;
        assert.equal(
          servers(consent.html),
          "<code>fx</code>, and the servers the owner opened to particular accounts, if yours is one of them",
        );
        assert.doesNotMatch(consent.html, /files|ops/);
        const one = await signIn(proxy, { resource: proxy.url("files") });
        const page = one.browser.pages.find((p) => p.html.includes("Servers:"))!;
        assert.equal(
          servers(page.html),
          "<code>files</code> (only if the owner opened it to your account)",
        );
        const open = await signIn(proxy, { resource: proxy.url("fx") });
        const fx = open.browser.pages.find((p) => p.html.includes("Servers:"))!;
        assert.equal(servers(fx.html), "<code>fx</code>");
      },
    );

    await step(
      t,
      proxy,
      "server allow on SIGHUP: narrowing a server's allow hides it from live tokens at once; a grant for that server alone is revoked on its next use",
      async () => {
        gh.setCurrentUser(ALICE.id);
        const wide = await signInForTokens(proxy);
        const bound = await signInForTokens(proxy, { resource: proxy.url("files") });
        const files = proxy.url("files");
        assert.equal((await mcpInitialize(files, wide.tokens.access_token)).status, 200);
        assert.equal((await mcpInitialize(files, bound.tokens.access_token)).status, 200);

        const revoked = /refused on use by mcpServers\.files\.allow; grant revoked/;
        const seen = countLogLines(proxy, revoked);
        await allowFiles(proxy, [BOB.id]);
        assert.equal((await mcpInitialize(files, wide.tokens.access_token)).status, 404);
        assert.equal((await mcpInitialize(proxy.url("fx"), wide.tokens.access_token)).status, 200);
        assert.equal((await mcpInitialize(files, bound.tokens.access_token)).status, 404);
        await waitForNewLog(proxy, revoked, seen);
        const res = await refresh(
          proxy.origin,
          { clientId: bound.clientId },
          bound.tokens.refresh_token,
        );
        assert.equal(res.status, 400);
        assert.equal((await res.json()).error, "invalid_grant");
        // The code of a sign-in begun before the reload cannot be redeemed for the server either.
        const flow = await signIn(proxy, { resource: files });
        assert.equal(flow.code, undefined);
        assert.equal(flow.error, "invalid_target");
      },
    );

    await step(
      t,
      proxy,
      "server allow at code exchange: a code for a server narrowed between sign-in and redemption gets invalid_grant",
      async () => {
        // files is open to bob since the step before; narrowed to alice between his sign-in
        // and the redemption.
        gh.setCurrentUser(BOB.id);
        const flow = await signIn(proxy, { resource: proxy.url("files") });
        assert.ok(flow.code);
        await allowFiles(proxy, [ALICE.login]);
        const res = await redeem(
          proxy.origin,
          { clientId: flow.clientId },
          flow.code,
          flow.verifier,
        );
        assert.equal(res.status, 400);
        assert.equal((await res.json()).error, "invalid_grant");
      },
    );
  });
});

/** A refresh asking for a token for `resource` only (RFC 8707 §2.2). */
function narrowed(
  proxy: ProxyProcess,
  clientId: string,
  refreshToken: string,
  resource: string,
): Promise<Response> {
  return fetch(`${proxy.origin}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: clientId,
      resource,
    }),
  });
}
