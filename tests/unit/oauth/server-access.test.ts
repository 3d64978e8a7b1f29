/**
 * Per-server `allow`: the pure narrowing rule, the per-server deciders (pinned logins, org rules
 * cached like the global ones), the service's `mayUseServer` and the config's validation.
 */
import assert from "node:assert/strict";
import { narrow, ServerAccess } from "../../../lib/oauth/server-access.ts";
import { Policy, RECHECK_MS, type Verdict } from "../../../lib/oauth/policy.ts";
import { GitHubClient } from "../../../lib/oauth/github.ts";
import { OAuthService } from "../../../lib/oauth/service.ts";
import { KvStore, type Store } from "../../../lib/store/kv.ts";
import { silentLogger } from "../../../lib/log.ts";
import { parseConfigText } from "../../../lib/config/load.ts";
import { ConfigError } from "../../../lib/config/check.ts";
import type { AllowList } from "../../../lib/config/auth-schema.ts";

const YES: Verdict = { allowed: true, via: "allow.users (id)" };
const NO: Verdict = { allowed: false, reason: "not on the allow-list" };
const DOWN: Verdict = { allowed: false, reason: "GitHub down", transient: true };

Deno.test("narrow: the global list first, then the server's own; no own list means the global decision", () => {
  assert.deepEqual(narrow(YES, undefined), YES);
  assert.deepEqual(narrow(NO, undefined), NO);
  // The server's list never widens the global one.
  assert.deepEqual(narrow(NO, YES), NO);
  assert.deepEqual(narrow(YES, NO), NO);
  assert.deepEqual(narrow(YES, DOWN), DOWN);
  const own: Verdict = { allowed: true, via: "allow.teams (acme/ops)" };
  assert.deepEqual(narrow(YES, own), own);
});

const GITHUB = {
  clientId: "Ov23liTestClient01",
  clientSecret: "s3cret-for-tests",
  webUrl: "https://github.example",
  apiUrl: "https://api.github.example",
};
const OCTO = { id: 7, login: "octo" };
const EVE = { id: 8, login: "eve" };

/** A fake GitHub API: logins → ids, and which user ids are active members of org "acme". */
function fakeApi(members: Set<number>, asked: string[]): typeof fetch {
  const logins: Record<string, number> = { octo: OCTO.id, eve: EVE.id };
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    asked.push(url.pathname);
    const user = /^\/users\/([^/]+)$/.exec(url.pathname);
    if (user) {
      const id = logins[user[1]];
      return Promise.resolve(
        id ? Response.json({ id, login: user[1] }) : new Response("{}", { status: 404 }),
      );
    }
    // The kept token is "token-<id>": membership is decided per user.
    const token = new Headers(init?.headers).get("authorization") ?? "";
    const id = Number(token.replace("Bearer token-", ""));
    return Promise.resolve(
      members.has(id) ? Response.json({ state: "active" }) : new Response("", { status: 404 }),
    );
  };
}

function list(partial: Partial<AllowList>): AllowList {
  return { ids: [], logins: [], orgs: [], teams: [], ...partial };
}

async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mop-server-access-" });
  const store = await KvStore.open(dir);
  try {
    await fn(store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ServerAccess: open servers admit, a login pins to its id, org rules are cached for RECHECK_MS", async () => {
  await withStore(async (store) => {
    const members = new Set([OCTO.id]);
    const asked: string[] = [];
    const clock = { now: 1_000_000 };
    const github = new GitHubClient(GITHUB, { fetch: fakeApi(members, asked), userAgent: "t" });
    const make = (allow: AllowList, label: string) =>
      new Policy(allow, {
        label,
        store,
        github,
        vault: { get: (id) => Promise.resolve(`token-${id}`) },
        log: silentLogger,
        now: () => clock.now,
      });
    const servers = [
      { name: "open" },
      { name: "mine", allow: list({ logins: ["octo"] }) },
      { name: "team", allow: list({ orgs: ["acme"] }) },
    ];
    // deno-lint-ignore no-explicit-any
    const access = new ServerAccess(servers as any, make);
    assert.deepEqual(access.restrictedServers, ["mine", "team"]);
    assert.equal(access.restricted("open"), false);
    assert.equal(access.needsMembership, true);
    await access.resolveLogins();
    assert.equal((await store.getPin("octo"))?.id, OCTO.id, "pinned like a global login");

    const octo = { userId: OCTO.id, login: OCTO.login };
    const eve = { userId: EVE.id, login: EVE.login };
    assert.equal((await access.check(eve, "open")).allowed, true);
    assert.deepEqual(await access.check(octo, "mine"), {
      allowed: true,
      via: "mcpServers.mine.allow.users (octo)",
    });
    assert.equal((await access.check(eve, "mine")).allowed, false);
    // Someone else who now holds the login "octo" is not octo.
    assert.equal((await access.check({ userId: 99, login: "octo" }, "mine")).allowed, false);

    assert.equal((await access.check(octo, "team")).allowed, true);
    assert.equal((await access.check(eve, "team")).allowed, false);
    const calls = asked.length;
    members.delete(OCTO.id);
    assert.equal((await access.check(octo, "team")).allowed, true, "cached on use");
    assert.equal(asked.length, calls, "no GitHub call within RECHECK_MS");
    clock.now += RECHECK_MS;
    assert.equal((await access.check(octo, "team")).allowed, false, "re-checked after RECHECK_MS");
    members.add(OCTO.id);
    assert.equal((await access.check(octo, "team", 0)).allowed, true, "maxAge 0 asks now");
  });
});

const FAKE_API = "http://127.0.0.1:9/api/v3";

function config(servers: Record<string, unknown>, allow: unknown = { users: [OCTO.id, EVE.id] }) {
  const text = JSON.stringify({
    publicUrl: "https://proxy.example.com",
    github: { clientId: "Ov23liTestClient01", clientSecret: "s3cret-for-tests", apiUrl: FAKE_API },
    allow,
    mcpServers: servers,
  });
  return parseConfigText(text, { source: "/tmp/config.json", env: () => undefined }).config;
}

Deno.test("mayUseServer: the global list AND the server's own; reload narrows a server; serverOf names servers only", async () => {
  await withStore(async (store) => {
    const c = config({
      files: { command: "deno", allow: { users: [OCTO.id] } },
      notes: { command: "deno" },
    });
    const svc = await OAuthService.create(c.auth!, c.servers, { store, log: silentLogger });
    const octo = { userId: OCTO.id, login: OCTO.login };
    const eve = { userId: EVE.id, login: EVE.login };
    const mallory = { userId: 66, login: "mallory" };
    assert.equal(await svc.mayUseServer(octo, "files"), true);
    assert.equal(await svc.mayUseServer(eve, "files"), false);
    assert.equal(await svc.mayUseServer(eve, "notes"), true);
    assert.equal(await svc.mayUseServer(mallory, "notes"), false, "not on the global list");
    assert.equal(svc.githubScope, "", "user rules only: no read:org");

    assert.equal(svc.serverOf("https://proxy.example.com/mcp/files"), "files");
    assert.equal(svc.serverOf("https://proxy.example.com/mcp/nope"), null);
    assert.equal(svc.serverOf("https://proxy.example.com"), null);

    const narrowed = config({
      files: { command: "deno", allow: { users: [EVE.id] } },
      notes: { command: "deno", allow: { orgs: ["acme"] } },
    });
    assert.equal(await svc.reloadAllowList(narrowed.auth!, narrowed.servers), true);
    assert.equal(await svc.mayUseServer(octo, "files"), false, "reload applies at once");
    assert.equal(await svc.mayUseServer(eve, "files"), true);
    assert.equal(svc.githubScope, "read:org", "a server's org rule asks for read:org");
    // A server missing from the reloaded file keeps its running allow (removal needs a restart).
    const without = config({ notes: { command: "deno" } });
    await svc.reloadAllowList(without.auth!, without.servers);
    assert.equal(await svc.mayUseServer(eve, "files"), true);
    assert.equal(await svc.mayUseServer(octo, "files"), false);
  });
});

function problems(servers: Record<string, unknown>, extra: Record<string, unknown> = {}): string[] {
  const base = {
    publicUrl: "https://proxy.example.com",
    github: { clientId: "Ov23liTestClient01", clientSecret: "s3cret-for-tests" },
    allow: { users: [1] },
  };
  try {
    parseConfigText(JSON.stringify({ ...base, ...extra, mcpServers: servers }), {
      source: "/tmp/config.json",
      env: () => undefined,
    });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

Deno.test("config: a server's allow is read like the global one (ids, pinned logins, orgs, teams)", () => {
  const c = config({
    files: {
      command: "deno",
      allow: { users: ["Octo", 42, "43"], orgs: ["Acme"], teams: ["acme/Ops"] },
    },
    notes: { command: "deno" },
  });
  assert.deepEqual(c.servers[0].allow, {
    ids: [42, 43],
    logins: ["octo"],
    orgs: ["acme"],
    teams: [{ org: "acme", slug: "ops" }],
  });
  assert.equal(c.servers[1].allow, undefined, "no allow: everyone on the global list");
});

Deno.test("config: bad per-server allow input gets clear errors naming the key", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { allow: { user: [1] } },
      /^mcpServers\.f\.allow\.user: unknown key \(did you mean "users"\?\)$/,
    ],
    [
      { allow: { teams: ["acme"] } },
      /^mcpServers\.f\.allow\.teams\[0\]: expected "org\/team-slug"$/,
    ],
    [
      { allow: { teams: ["acme/ops/x"] } },
      /^mcpServers\.f\.allow\.teams\[0\]: expected "org\/team-slug"$/,
    ],
    [
      { allow: { users: ["not a login!"] } },
      /^mcpServers\.f\.allow\.users\[0\]: expected a GitHub login or a numeric user id$/,
    ],
    [
      { allow: { users: [-3] } },
      /^mcpServers\.f\.allow\.users\[0\]: expected a GitHub login or a numeric user id$/,
    ],
    [
      { allow: { orgs: ["-bad"] } },
      /^mcpServers\.f\.allow\.orgs\[0\]: expected a GitHub organization login$/,
    ],
    [{ allow: {} }, /^mcpServers\.f\.allow: empty: nobody could use this server/],
    [{ allow: ["octo"] }, /^mcpServers\.f\.allow: expected an object, got an array$/],
  ];
  for (const [extra, pattern] of cases) {
    const found = problems({ f: { command: "deno", ...extra } });
    assert.ok(found.some((p) => pattern.test(p)), `${JSON.stringify(extra)}: ${found.join("; ")}`);
  }
});

Deno.test("config: a server's allow without login is an error (nothing would check it)", () => {
  let found: string[] = [];
  try {
    parseConfigText(
      JSON.stringify({ mcpServers: { f: { command: "deno", allow: { users: [1] } } } }),
      { source: "/tmp/config.json", env: () => undefined },
    );
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    found = error.problems;
  }
  assert.deepEqual(found, [`mcpServers.f.allow: only used with login: add a "github" section`]);
});
