/**
 * The allow-list and the GitHub leg, end to end against the fake GitHub: who is admitted at sign-in
 * (ids, logins pinned to ids, orgs, teams), what a refused person sees, what the client receives,
 * which GitHub scope is asked for, that removal takes effect without a restart (org change, config
 * change + SIGHUP, app revoked at GitHub), and GitHub's quirks (200-with-error token responses,
 * access_denied, REST headers, PKCE).
 *
 * The tests of one allow-list share a proxy as steps, each with its own GitHub user (the proxy
 * keeps its decisions per user); steps that change what every user sees (a restricted org,
 * expiring GitHub tokens, a config reload) put it back or come last.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../../helpers/proxy.ts";
import {
  ALICE,
  BOB,
  fakeGitHub,
  GITHUB_CLIENT_ID,
  LOGIN_ENV,
  loginConfig,
  MALLORY,
} from "../../helpers/oauth.ts";
import {
  countLogLines,
  links,
  mcpInitialize,
  pageText,
  REDIRECT_URI,
  refresh,
  reloadConfig,
  type SignIn,
  signIn,
  signInForTokens,
  waitForNewLog,
  waitUntil,
} from "../../helpers/oauth-flows.ts";
import { step, withLogin } from "../../helpers/login.ts";
import type { FakeGitHub } from "../../fixtures/fake-github.ts";
import { KvStore } from "../../../lib/store/kv.ts";
import { GitHubClient } from "../../../lib/oauth/github.ts";
import { Policy } from "../../../lib/oauth/policy.ts";
import { silentLogger } from "../../../lib/log.ts";

/** The refusal page of a sign-in, checked; returns the URL its return link points to. */
function assertRefused(flow: SignIn, who: { id: number; login: string }, origin: string): URL {
  assert.equal(flow.code, undefined, "no code for a refused user");
  assert.ok(flow.page, `expected the not-allowed page, got ${flow.redirect?.href}`);
  assert.equal(flow.page.status, 403);
  const text = pageText(flow.page.html);
  assert.match(text, /not on this proxy's allow-list/);
  assert.ok(text.includes(`@${who.login} (id ${who.id})`), `names the account: ${text}`);
  const back = links(flow.page.html).map((l) => new URL(l)).find((u) =>
    u.href.startsWith(REDIRECT_URI)
  );
  assert.ok(back, "the page links back to the client");
  assert.equal(back.searchParams.get("error"), "access_denied");
  assert.equal(back.searchParams.get("state"), flow.state);
  assert.equal(back.searchParams.get("iss"), origin);
  assert.equal(back.searchParams.get("code"), null);
  return back;
}

function assertAdmitted(flow: SignIn): void {
  assert.ok(flow.code, `expected a code, got ${flow.redirect?.href ?? flow.page?.html}`);
  assert.equal(flow.redirect?.searchParams.get("state"), flow.state);
}

const lastGitHubToken = (gh: FakeGitHub) => gh.tokenRequests.at(-1)!.accessToken!;

async function pkceOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return btoa(String.fromCharCode(...new Uint8Array(digest)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A GitHub account of one step (made known to the fake before the proxy starts). */
type User = { id: number; login: string };
const user = (id: number, login: string): User => ({ id, login });

// ---------------------------------------------------------------------------------------------
// Lists of users only: the numeric id, the pinned login, the SIGHUP removal, GitHub's quirks.

const CAROL = user(7001, "carol");
const DAVE = user(7002, "dave");
/** BOB by id, a numeric string that is alice's id + 1 (an id, not a login), Carol by login. */
const USERS = [BOB.id, String(ALICE.id + 1), "Carol", DAVE.id];

Deno.test("allow-list of users (one proxy)", async (t) => {
  await withLogin({
    allow: { users: USERS },
    setup: (gh) => [CAROL, DAVE].forEach((u) => gh.addUser(u)),
  }, async ({ gh, proxy }) => {
    await step(
      t,
      proxy,
      "allow-list by numeric id: that account only; GitHub scope is empty for user-only lists",
      async () => {
        gh.setCurrentUser(BOB.id);
        const { tokens } = await signInForTokens(proxy);
        assert.equal((await mcpInitialize(proxy.url("fx"), tokens.access_token)).status, 200);
        assert.equal(gh.authorizeRequests.at(-1)!.scope, "", "no GitHub scope at all");
        await proxy.waitForLog(
          /sign-in allowed user_id=1001 login=bob .*via="allow\.users \(id\)"/,
        );
        // Identity was all the token was for: it is revoked, not kept.
        const bobToken = lastGitHubToken(gh);
        await waitUntil(() => gh.tokenInfo(bobToken)?.revoked === true, 5000, "revocation");

        gh.setCurrentUser(ALICE.id);
        assertRefused(await signIn(proxy), ALICE, proxy.origin);
      },
    );

    await step(
      t,
      proxy,
      "allow-list by login: resolved to the id at start, pinned, then admitted",
      async () => {
        await proxy.waitForLog(/pinned allow-listed login to its GitHub id login=carol id=7001/);
        assert.ok(
          gh.apiRequests.some((r) => r.method === "GET" && r.path === "/api/v3/users/carol"),
        );
        gh.setCurrentUser(CAROL.id);
        const { tokens } = await signInForTokens(proxy);
        assert.equal((await mcpInitialize(proxy.url("fx"), tokens.access_token)).status, 200);
        await proxy.waitForLog(/sign-in allowed user_id=7001 .*via="allow\.users \(carol\)"/);
        gh.setCurrentUser(MALLORY.id);
        assertRefused(await signIn(proxy), MALLORY, proxy.origin);
      },
    );

    await step(
      t,
      proxy,
      "GitHub quirk: the token endpoint's HTTP 200 with an error gives the client server_error, the log says why, and the proxy keeps working",
      async () => {
        gh.setCurrentUser(BOB.id);
        const userCalls = gh.apiRequests.filter((r) => r.path === "/api/v3/user").length;
        gh.injectFault({
          path: "/login/oauth/access_token",
          status: 200,
          body: {
            error: "bad_verification_code",
            error_description: "The code passed is incorrect or expired.",
          },
          times: 1,
        });
        const failed = await signIn(proxy);
        assert.equal(failed.code, undefined);
        assert.equal(failed.error, "server_error", failed.redirect?.href);
        assert.equal(failed.redirect?.searchParams.get("state"), failed.state);
        assert.equal(failed.redirect?.searchParams.get("iss"), proxy.origin);
        await proxy.waitForLog(/GitHub sign-in failed .*bad_verification_code/);
        assert.equal(gh.apiRequests.filter((r) => r.path === "/api/v3/user").length, userCalls);
        // Not a crash: the next sign-in works.
        assertAdmitted(await signIn(proxy));
      },
    );

    await step(
      t,
      proxy,
      "GitHub quirk: GitHub's error=access_denied at the callback gives the client access_denied",
      async () => {
        gh.setCurrentUser(null);
        const tokenRequests = gh.tokenRequests.length;
        const flow = await signIn(proxy);
        assert.equal(gh.authorizeRequests.at(-1)!.error, "access_denied");
        assert.equal(flow.code, undefined);
        assert.equal(flow.error, "access_denied", flow.redirect?.href);
        assert.equal(flow.redirect?.searchParams.get("state"), flow.state);
        assert.equal(flow.redirect?.searchParams.get("iss"), proxy.origin);
        assert.equal(gh.tokenRequests.length, tokenRequests, "no token request after a refusal");
        await proxy.waitForLog(/GitHub sign-in failed .*access_denied/);
      },
    );

    // Last: it rewrites the allow-list.
    await step(
      t,
      proxy,
      "removal: a user removed from the config is cut off after SIGHUP (401, refresh invalid_grant); a broken allow-list on SIGHUP keeps the running one",
      async () => {
        gh.setCurrentUser(DAVE.id);
        const { tokens, clientId } = await signInForTokens(proxy);
        const url = proxy.url("fx");
        assert.equal((await mcpInitialize(url, tokens.access_token)).status, 200);

        // An empty allow-list is a config error: the running one stays.
        const failed = countLogLines(proxy, /config reload failed, keeping the running config/);
        await reloadConfig(proxy, (c) => c.allow = { users: [] });
        const line = await waitForNewLog(
          proxy,
          /config reload failed, keeping the running config/,
          failed,
        );
        assert.match(line, /allow/);
        assert.equal((await mcpInitialize(url, tokens.access_token)).status, 200);

        const reloaded = countLogLines(proxy, /allow-list reloaded/);
        await reloadConfig(proxy, (c) => c.allow = { users: USERS.filter((u) => u !== DAVE.id) });
        await waitForNewLog(proxy, /allow-list reloaded/, reloaded);
        const cut = await mcpInitialize(url, tokens.access_token);
        assert.equal(cut.status, 401);
        assert.match(cut.wwwAuthenticate ?? "", /error="invalid_token"/);
        await proxy.waitForLog(/refused on use by the allow-list; grant revoked user_id=7002/);
        const res = await refresh(proxy.origin, { clientId }, tokens.refresh_token);
        assert.equal(res.status, 400);
        assert.equal((await res.json()).error, "invalid_grant");
      },
    );
  });
});

Deno.test("GitHub quirk: a wrong client secret (GitHub's 200 with incorrect_client_credentials) gives the client server_error", async () => {
  await withLogin(
    { start: { env: { GITHUB_CLIENT_SECRET: "not-the-secret" } } },
    async ({ gh, proxy }) => {
      const flow = await signIn(proxy);
      assert.equal(flow.code, undefined);
      assert.equal(flow.error, "server_error", flow.redirect?.href);
      assert.equal(gh.tokenRequests.at(-1)!.error, "incorrect_client_credentials");
      await proxy.waitForLog(/GitHub sign-in failed .*incorrect_client_credentials/);
    },
  );
});

Deno.test("allow-list: a renamed login re-registered by someone else is refused after a restart (pin persisted); the log says to list the numeric id", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-rename-" });
  const gh = await fakeGitHub();
  let proxy: ProxyProcess | undefined;
  try {
    const config = {
      mcpServers: { fx: fixtureServer() },
      ...loginConfig(gh, { users: ["alice"] }),
    };
    proxy = await startProxy(config, { env: LOGIN_ENV, dir });
    await proxy.waitForLog(/pinned allow-listed login to its GitHub id login=alice id=583231/);
    const before = await signInForTokens(proxy);
    await proxy.stop();

    // The original account is renamed; a new account takes the login "alice".
    gh.renameUser(ALICE.id, "alice-old");
    gh.addUser({ id: 7777, login: "alice" });
    const sameConfig = JSON.parse(await Deno.readTextFile(proxy.configPath));
    proxy = await startProxy(sameConfig, { env: LOGIN_ENV, dir });
    const line = await proxy.waitForLog(/login "alice" now belongs to GitHub id 7777/);
    assert.match(line, /pinned to id 583231/);
    assert.match(line, /list the numeric id/);

    gh.setCurrentUser(7777);
    assertRefused(await signIn(proxy), { id: 7777, login: "alice" }, proxy.origin);
    // The conflicting login rule admits nobody, the original account included: its old
    // grant is refused on use, and it cannot sign in again by that rule.
    const old = await mcpInitialize(proxy.url("fx"), before.tokens.access_token);
    assert.equal(old.status, 401);
    assert.match(old.wwwAuthenticate ?? "", /error="invalid_token"/);
    gh.setCurrentUser(ALICE.id);
    assertRefused(await signIn(proxy), { id: ALICE.id, login: "alice-old" }, proxy.origin);

    // Listing the numeric id (as the log says) admits the original account again.
    const reloaded = countLogLines(proxy, /allow-list reloaded/);
    await reloadConfig(proxy, (c) => c.allow = { users: ["alice", ALICE.id] });
    await waitForNewLog(proxy, /allow-list reloaded/, reloaded);
    assertAdmitted(await signIn(proxy));
    gh.setCurrentUser(7777);
    assertRefused(await signIn(proxy), { id: 7777, login: "alice" }, proxy.origin);
  } catch (error) {
    console.log(proxy?.logs());
    throw error;
  } finally {
    await proxy?.stop();
    await gh.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Lists with orgs and teams: refusals and what is kept, org and team rules, removal at GitHub,
// outages, the GitHub leg itself.

const ERIN = user(7003, "erin");
const FRANK = user(7004, "frank");
const GRACE = user(7005, "grace");
const HEIDI = user(7006, "heidi");
const IVAN = user(7007, "ivan");
const JUDY = user(7008, "judy");
const KEN = user(7009, "ken");
const LEO = user(7010, "leo");
/** Active members of acme at the start. */
const ACME = [ALICE, BOB, FRANK, GRACE, HEIDI, IVAN, JUDY, KEN];

function orgSetup(gh: FakeGitHub): void {
  for (const u of [ERIN, FRANK, GRACE, HEIDI, IVAN, JUDY, KEN, LEO]) gh.addUser(u);
  for (const u of ACME) gh.setOrgMembership("acme", u.id, "active");
  // Leo is an active member of beta, not an allowed org: only its team admits him.
  gh.setOrgMembership("beta", LEO.id, "active");
  gh.setTeamMembership("beta", "platform", LEO.id, "active");
}

Deno.test("allow-list of orgs and teams (one proxy)", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "mop-allow-" });
  let logs = "";
  let issued: string[] = [];
  try {
    await withLogin({
      allow: { users: ["erin"], orgs: ["acme"], teams: ["beta/platform"] },
      setup: orgSetup,
      start: { dir },
    }, async ({ gh, proxy }) => {
      await orgSteps(t, gh, proxy);
      issued = gh.tokenRequests.flatMap((r) => r.accessToken ? [r.accessToken] : []);
      logs = proxy.logs() + proxy.stdout();
    });

    await t.step(
      "allow-list: the refused user's GitHub token is never stored; an org member's is kept",
      async () => {
        const kv = await Deno.openKv(`${dir}/data/store.kv`);
        try {
          const kept = (await Array.fromAsync(kv.list({ prefix: ["github_tokens"] })))
            .map((e) => e.key[1]);
          assert.ok(kept.includes(ALICE.id), `an org member's token is kept: ${kept}`);
          assert.ok(!kept.includes(MALLORY.id), `a refused user's token is not: ${kept}`);
          const everything = await Array.fromAsync(kv.list({ prefix: [] }));
          const dump = JSON.stringify(everything.map((e) => [e.key, e.value]));
          assert.ok(issued.length > 0);
          for (const token of issued) assert.ok(!dump.includes(token), "no GitHub token in clear");
          const codes = everything.filter((e) => e.key[0] === "codes");
          assert.ok(codes.every((e) => (e.value as { userId: number }).userId !== MALLORY.id));
          const grants = everything.filter((e) => e.key[0] === "grants");
          assert.ok(grants.every((e) => (e.value as { userId: number }).userId !== MALLORY.id));
        } finally {
          kv.close();
        }
        for (const token of issued) assert.ok(!logs.includes(token), "no GitHub token in the log");
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function orgSteps(t: Deno.TestContext, gh: FakeGitHub, proxy: ProxyProcess): Promise<void> {
  await step(
    t,
    proxy,
    "allow-list: a user not on the list gets a 403 page naming the account, the client access_denied, no code; the GitHub token is revoked",
    async () => {
      const api = gh.apiRequests.length;
      gh.setCurrentUser(MALLORY.id);
      const refused = await signIn(proxy);
      assertRefused(refused, MALLORY, proxy.origin);
      assert.deepEqual(refused.page!.html.match(/mop_code_/g), null);
      const malloryToken = lastGitHubToken(gh);
      // Revoked at GitHub with the app's Basic credentials.
      await waitUntil(() => gh.tokenInfo(malloryToken)?.revoked === true, 5000, "revocation");
      const del = gh.apiRequests.slice(api).find((r) =>
        r.method === "DELETE" && r.path === `/api/v3/applications/${GITHUB_CLIENT_ID}/token`
      );
      assert.ok(del, "DELETE /applications/{client_id}/token");
      assert.equal(JSON.parse(del.body!).access_token, malloryToken);
      assert.match(del.headers.authorization, /^Basic /);
      assert.equal(del.status, 204);
      await proxy.waitForLog(/sign-in refused: not on the allow-list user_id=6666 login=mallory/);

      // Control: an allowed org member's token IS kept (org re-checks need it), so the store
      // check at the end would see a refused user's token if it were stored.
      gh.setCurrentUser(ALICE.id);
      assertAdmitted(await signIn(proxy));
      assert.equal(gh.tokenInfo(lastGitHubToken(gh))?.revoked, false);
    },
  );

  await step(
    t,
    proxy,
    "GitHub leg: PKCE S256 with the proxy's own verifier, redirect_uri = publicUrl/auth/callback, REST headers on every call",
    async () => {
      await proxy.waitForLog(/pinned allow-listed login/);
      const [authorized, exchanged, api] = [
        gh.authorizeRequests.length,
        gh.tokenRequests.length,
        gh.apiRequests.length,
      ];
      const flows: SignIn[] = [];
      for (const u of [ERIN, BOB]) {
        gh.setCurrentUser(u.id);
        const flow = await signIn(proxy);
        assertAdmitted(flow);
        flows.push(flow);
      }
      gh.setCurrentUser(MALLORY.id);
      assertRefused(await signIn(proxy), MALLORY, proxy.origin);
      await waitUntil(
        () => gh.apiRequests.slice(api).some((r) => r.method === "DELETE"),
        5000,
        "DELETE",
      );

      const callback = `${proxy.origin}/auth/callback`;
      const authorizeRequests = gh.authorizeRequests.slice(authorized);
      const tokenRequests = gh.tokenRequests.slice(exchanged);
      assert.equal(authorizeRequests.length, 3);
      assert.equal(tokenRequests.length, 3);
      for (const [i, authz] of authorizeRequests.entries()) {
        assert.equal(authz.clientId, GITHUB_CLIENT_ID);
        assert.equal(authz.redirectUri, callback);
        assert.equal(authz.codeChallengeMethod, "S256");
        assert.match(authz.codeChallenge ?? "", /^[A-Za-z0-9_-]{43}$/);
        assert.equal(authz.allowSignup, "false");
        assert.ok((authz.state ?? "").length >= 32, "a long random upstream state");
        const token = tokenRequests[i];
        assert.equal(token.error, null);
        assert.equal(token.params.redirect_uri, callback);
        assert.match(token.accept ?? "", /application\/json/);
        const verifier = token.params.code_verifier;
        assert.ok(verifier, "the token request carries code_verifier");
        assert.equal(
          await pkceOf(verifier),
          authz.codeChallenge,
          "GitHub gets the S256 of the verifier",
        );
        if (flows[i]) {
          // The MCP client's PKCE never travels to GitHub.
          assert.notEqual(authz.codeChallenge, await pkceOf(flows[i].verifier));
          assert.notEqual(verifier, flows[i].verifier);
        }
      }
      const paths = new Set(gh.apiRequests.map((r) => `${r.method} ${r.path}`));
      for (
        const expected of [
          "GET /api/v3/users/erin",
          "GET /api/v3/user",
          "GET /api/v3/user/memberships/orgs/acme",
          `DELETE /api/v3/applications/${GITHUB_CLIENT_ID}/token`,
        ]
      ) assert.ok(paths.has(expected), `${expected} in ${[...paths].join(", ")}`);
      for (const r of gh.apiRequests) {
        assert.equal(r.headers.accept, "application/vnd.github+json", r.path);
        assert.equal(r.headers["x-github-api-version"], "2022-11-28", r.path);
        assert.match(r.headers["user-agent"] ?? "", /^mcp-oauth-proxy\/\d/, r.path);
        if (r.path === "/api/v3/user" || r.path.startsWith("/api/v3/user/")) {
          assert.match(r.headers.authorization ?? "", /^Bearer gho_/, r.path);
        }
      }
    },
  );

  await step(
    t,
    proxy,
    "allow-list by team: active member admitted (read:org), removed from the team refused",
    async () => {
      gh.setCurrentUser(LEO.id);
      assertAdmitted(await signIn(proxy));
      assert.equal(gh.authorizeRequests.at(-1)!.scope, "read:org");
      await proxy.waitForLog(/user_id=7010 .*via="allow\.teams \(beta\/platform\)"/);
      gh.setTeamMembership("beta", "platform", LEO.id, null);
      // Still an active org member: that is not enough for a team rule.
      assertRefused(await signIn(proxy), LEO, proxy.origin);
    },
  );

  await step(
    t,
    proxy,
    "removal: a user removed from the org between refreshes gets invalid_grant, the grant is revoked; MCP requests never call GitHub",
    async () => {
      gh.setCurrentUser(GRACE.id);
      const { tokens, clientId } = await signInForTokens(proxy);
      const url = proxy.url("fx");
      assert.equal((await mcpInitialize(url, tokens.access_token)).status, 200);
      const calls = gh.apiRequests.length;
      gh.setOrgMembership("acme", GRACE.id, null);
      // On use the decision is cached (at most 15 min): requests do not reach GitHub.
      for (let i = 0; i < 3; i++) {
        assert.equal((await mcpInitialize(url, tokens.access_token)).status, 200);
      }
      assert.equal(gh.apiRequests.length, calls, "no GitHub call per MCP request");

      // A refresh re-checks now.
      const res = await refresh(proxy.origin, { clientId }, tokens.refresh_token);
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error, "invalid_grant");
      assert.ok(gh.apiRequests.length > calls, "the refresh asked GitHub");
      await proxy.waitForLog(/refused at refresh by the allow-list; grant revoked user_id=7005/);
      const after = await mcpInitialize(url, tokens.access_token);
      assert.equal(after.status, 401, "the grant's access token is revoked too");
      assert.match(after.wwwAuthenticate ?? "", /error="invalid_token"/);
      // Re-admitted at GitHub: the revoked grant stays revoked.
      gh.setOrgMembership("acme", GRACE.id, "active");
      const again = await refresh(proxy.origin, { clientId }, tokens.refresh_token);
      assert.equal(again.status, 400);
      assert.equal((await again.json()).error, "invalid_grant");
    },
  );

  await step(
    t,
    proxy,
    "removal: the user revokes the app at GitHub; the next membership re-check revokes the grant",
    async () => {
      gh.setCurrentUser(HEIDI.id);
      const api = gh.apiRequests.length;
      const { tokens, clientId } = await signInForTokens(proxy);
      const kept = lastGitHubToken(gh);
      assert.equal(gh.tokenInfo(kept)?.revoked, false, "kept for org re-checks");
      gh.revokeToken(kept);
      const res = await refresh(proxy.origin, { clientId }, tokens.refresh_token);
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error, "invalid_grant");
      assert.ok(
        gh.apiRequests.slice(api).some((r) =>
          r.path === "/api/v3/user/memberships/orgs/acme" && r.status === 401
        ),
      );
      await proxy.waitForLog(
        /refused at refresh by the allow-list; grant revoked user_id=7006 .*revoked the GitHub authorization/,
      );
      assert.equal((await mcpInitialize(proxy.url("fx"), tokens.access_token)).status, 401);
    },
  );

  await step(
    t,
    proxy,
    "GitHub outage during a membership re-check keeps the last decision: the refresh succeeds and the grant stays",
    async () => {
      gh.setCurrentUser(IVAN.id);
      const { tokens, clientId } = await signInForTokens(proxy);
      const kept = /keeping the last allow-list decision; GitHub did not answer/;
      const seen = countLogLines(proxy, kept);
      gh.injectFault({ path: "/api/v3/user/memberships/orgs/acme", status: 502, times: 1 });
      const res = await refresh(proxy.origin, { clientId }, tokens.refresh_token);
      assert.equal(res.status, 200, await res.clone().text());
      const next = await res.json();
      await waitForNewLog(proxy, kept, seen);
      assert.equal((await mcpInitialize(proxy.url("fx"), next.access_token)).status, 200);
    },
  );

  await step(
    t,
    proxy,
    "GitHub outage at a later sign-in: the person is not told they are not allowed, and their existing grants keep working",
    async () => {
      gh.setCurrentUser(JUDY.id);
      const { tokens } = await signInForTokens(proxy);
      gh.injectFault({ path: "/api/v3/user/memberships/orgs/acme", status: 502, times: 1 });
      const flow = await signIn(proxy);
      assert.equal(flow.page, undefined, `no "not allowed" page: ${flow.page?.html}`);
      assert.equal(flow.code, undefined);
      assert.equal(flow.error, "temporarily_unavailable", flow.redirect?.href);
      assert.equal(flow.redirect?.searchParams.get("state"), flow.state);
      assert.equal((await mcpInitialize(proxy.url("fx"), tokens.access_token)).status, 200);
    },
  );

  await step(
    t,
    proxy,
    "allow-list by org: active admitted (GitHub scope read:org), pending refused, OAuth-App-restricted org refused with a hint naming it",
    async () => {
      gh.setCurrentUser(FRANK.id);
      const flow = await signIn(proxy);
      assertAdmitted(flow);
      assert.equal(gh.authorizeRequests.at(-1)!.scope, "read:org");
      const consent = flow.browser.pages.find((p) => p.html.includes('value="allow"'));
      assert.match(pageText(consent!.html), /asks GitHub for read:org/);
      await proxy.waitForLog(/sign-in allowed user_id=7004 .*via="allow\.orgs \(acme\)"/);

      const pending = /not an active member .*org=acme state=pending/;
      const pendingSeen = countLogLines(proxy, pending);
      gh.setOrgMembership("acme", FRANK.id, "pending");
      assertRefused(await signIn(proxy), FRANK, proxy.origin);
      await waitForNewLog(proxy, pending, pendingSeen);

      gh.setOrgMembership("acme", FRANK.id, "active");
      gh.restrictOrg("acme");
      try {
        const api = gh.apiRequests.length;
        const hints = /org=acme state=none .*OAuth App access restrictions/;
        const seen = countLogLines(proxy, hints);
        assertRefused(await signIn(proxy), FRANK, proxy.origin);
        await waitForNewLog(proxy, hints, seen);
        assert.ok(
          gh.apiRequests.slice(api).some((r) =>
            r.path === "/api/v3/user/memberships/orgs/acme" && r.status === 403
          ),
        );
      } finally {
        gh.restrictOrg("acme", false);
      }
    },
  );

  // Last: from here on the fake's GitHub tokens expire, and its clock is 8 h ahead.
  await step(
    t,
    proxy,
    "GitHub tokens that expire (opt-in 8 h expiry): the kept token is refreshed for re-checks instead of revoking the grant",
    async () => {
      gh.registerApp({
        clientId: GITHUB_CLIENT_ID,
        clientSecret: LOGIN_ENV.GITHUB_CLIENT_SECRET,
        expiringTokens: true,
      });
      gh.setCurrentUser(KEN.id);
      const { tokens, clientId } = await signInForTokens(proxy);
      const first = lastGitHubToken(gh);
      assert.ok(gh.tokenInfo(first)?.refreshToken, "GitHub issued a refresh token");
      gh.advanceClock(8 * 3_600_000 + 60_000);
      const res = await refresh(proxy.origin, { clientId }, tokens.refresh_token);
      assert.equal(res.status, 200, await res.clone().text());
      const grantRefresh = gh.tokenRequests.at(-1)!;
      assert.equal(grantRefresh.params.grant_type, "refresh_token");
      assert.equal(grantRefresh.error, null);
      const next = await res.json();
      assert.equal((await mcpInitialize(proxy.url("fx"), next.access_token)).status, 200);
      // Revoking the app at GitHub still ends the grant (the refresh token dies with it).
      gh.revokeToken(grantRefresh.accessToken!);
      const cut = await refresh(proxy.origin, { clientId }, next.refresh_token);
      assert.equal(cut.status, 400);
      assert.equal((await cut.json()).error, "invalid_grant");
      await proxy.waitForLog(
        /refused at refresh by the allow-list; grant revoked user_id=7009 .*revoked the GitHub authorization/,
      );
    },
  );
}

Deno.test("policy timing: after a GitHub outage at a refresh, the kept decision is asked again within minutes on use, not 16 minutes later", async () => {
  const gh = await fakeGitHub();
  const dir = await Deno.makeTempDir({ prefix: "mop-policy-" });
  const store = await KvStore.open(dir);
  try {
    gh.setOrgMembership("acme", ALICE.id, "active");
    const token = await gitHubTokenFor(gh);
    let now = Date.now();
    const github = new GitHubClient({
      clientId: GITHUB_CLIENT_ID,
      clientSecret: LOGIN_ENV.GITHUB_CLIENT_SECRET,
      webUrl: gh.webUrl,
      apiUrl: gh.apiUrl,
    }, { fetch, userAgent: "mcp-oauth-proxy/test" });
    const policy = new Policy({ ids: [], logins: [], orgs: ["acme"], teams: [] }, {
      store,
      github,
      vault: { get: () => Promise.resolve(token) },
      log: silentLogger,
      now: () => now,
    });
    assert.equal((await policy.atLogin(ALICE, token)).allowed, true);
    gh.injectFault({ path: "/api/v3/user/memberships/orgs/acme", status: 502, times: 1 });
    now += 1000;
    assert.equal((await policy.check(ALICE.id, "alice", 0)).allowed, true, "last decision kept");
    gh.setOrgMembership("acme", ALICE.id, null);
    const calls = gh.apiRequests.length;
    now += 2 * 60_000;
    const verdict = await policy.check(ALICE.id, "alice");
    assert.ok(gh.apiRequests.length > calls, "GitHub was asked again");
    assert.equal(verdict.allowed, false);
  } finally {
    await store.close();
    await gh.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A GitHub token for the fake's current user with read:org, from a direct code exchange. */
async function gitHubTokenFor(gh: FakeGitHub): Promise<string> {
  const redirectUri = "http://127.0.0.1:9/cb";
  const verifier = "v".repeat(43);
  const challenge = await pkceOf(verifier);
  const authz = await fetch(
    `${gh.webUrl}/login/oauth/authorize?${new URLSearchParams({
      client_id: GITHUB_CLIENT_ID,
      redirect_uri: redirectUri,
      scope: "read:org",
      state: "s",
      code_challenge: challenge,
      code_challenge_method: "S256",
    })}`,
    { redirect: "manual" },
  );
  await authz.body?.cancel();
  const code = new URL(authz.headers.get("location")!).searchParams.get("code")!;
  const res = await fetch(`${gh.webUrl}/login/oauth/access_token`, {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      client_id: GITHUB_CLIENT_ID,
      client_secret: LOGIN_ENV.GITHUB_CLIENT_SECRET,
      code,
      code_verifier: verifier,
      redirect_uri: redirectUri,
    }),
  });
  return (await res.json()).access_token;
}
