import assert from "node:assert/strict";
import { Policy, RECHECK_MS } from "../../../lib/oauth/policy.ts";
import { GitHubClient } from "../../../lib/oauth/github.ts";
import { KvStore } from "../../../lib/store/kv.ts";
import { silentLogger } from "../../../lib/log.ts";

const GITHUB = {
  clientId: "Ov23liTestClient01",
  clientSecret: "s3cret-for-tests",
  webUrl: "https://github.example",
  apiUrl: "https://api.github.example",
};
const USER = { id: 7, login: "octo" };

/** GitHub's org-membership answer, switchable: "active", "none", "down" (503) or "401". */
interface Org {
  answer: "active" | "none" | "down" | "401";
  asked: string[];
}

async function withPolicy(
  fn: (
    p: { policy: Policy; org: Org; clock: { now: number }; refreshed: number[] },
  ) => Promise<void>,
): Promise<void> {
  const org: Org = { answer: "active", asked: [] };
  const clock = { now: 1_000_000 };
  const refreshed: number[] = [];
  const fetch: typeof globalThis.fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const token = new Headers(init?.headers).get("authorization");
    org.asked.push(`${url.pathname} ${token}`);
    const answer = token === "Bearer fresh" && org.answer === "401" ? "active" : org.answer;
    if (answer === "down") return Promise.resolve(new Response("", { status: 503 }));
    if (answer === "401") return Promise.resolve(new Response("", { status: 401 }));
    if (answer === "none") return Promise.resolve(new Response("", { status: 404 }));
    return Promise.resolve(Response.json({ state: "active" }));
  };
  const dir = await Deno.makeTempDir({ prefix: "mop-policy-" });
  const store = await KvStore.open(dir);
  try {
    const policy = new Policy({ ids: [], logins: [], orgs: ["acme"], teams: [] }, {
      store,
      github: new GitHubClient(GITHUB, { fetch, userAgent: "test" }),
      vault: {
        get: () => Promise.resolve("kept"),
        refresh: (userId) => {
          refreshed.push(userId);
          return Promise.resolve("fresh");
        },
      },
      log: silentLogger,
      now: () => clock.now,
    });
    await fn({ policy, org, clock, refreshed });
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("policy: org rules are re-checked at most every RECHECK_MS, not per request", async () => {
  await withPolicy(async ({ policy, org, clock }) => {
    assert.deepEqual(await policy.atLogin(USER, "login-token"), {
      allowed: true,
      via: "allow.orgs (acme)",
    });
    assert.equal(org.asked.length, 1);
    clock.now += RECHECK_MS - 1;
    assert.equal((await policy.check(USER.id, USER.login)).allowed, true);
    assert.equal(org.asked.length, 1, "cached");
    clock.now += 1;
    assert.equal((await policy.check(USER.id, USER.login)).allowed, true);
    assert.deepEqual(org.asked.slice(1), ["/user/memberships/orgs/acme Bearer kept"]);
  });
});

Deno.test("policy: a GitHub outage keeps the last 'allowed' and asks again in a minute", async () => {
  await withPolicy(async ({ policy, org, clock }) => {
    await policy.atLogin(USER, "login-token");
    org.answer = "down";
    clock.now += RECHECK_MS;
    assert.equal(
      (await policy.check(USER.id, USER.login)).allowed,
      true,
      "kept through the outage",
    );
    const asked = org.asked.length;
    clock.now += 59_999;
    assert.equal((await policy.check(USER.id, USER.login)).allowed, true);
    assert.equal(org.asked.length, asked, "not asked again within the minute");
    clock.now += 1;
    org.answer = "none";
    const verdict = await policy.check(USER.id, USER.login);
    assert.equal(org.asked.length, asked + 1, "asked again after a minute");
    assert.deepEqual(verdict, {
      allowed: false,
      reason: "not an active member of an allow-listed org or team",
    });
  });
});

Deno.test("policy: an outage at sign-in is transient and never cached as a decision", async () => {
  await withPolicy(async ({ policy, org }) => {
    org.answer = "down";
    const verdict = await policy.atLogin(USER, "login-token");
    assert.equal(verdict.allowed, false);
    assert.equal(!verdict.allowed && verdict.transient, true);
    org.answer = "active";
    assert.equal((await policy.check(USER.id, USER.login)).allowed, true, "asked again");
  });
});

Deno.test("policy: a refused kept token is refreshed before concluding the user revoked the app", async () => {
  await withPolicy(async ({ policy, org, clock, refreshed }) => {
    await policy.atLogin(USER, "login-token");
    org.answer = "401";
    clock.now += RECHECK_MS;
    assert.equal((await policy.check(USER.id, USER.login)).allowed, true, "the fresh token works");
    assert.deepEqual(refreshed, [USER.id]);
    assert.deepEqual(org.asked.slice(-2), [
      "/user/memberships/orgs/acme Bearer kept",
      "/user/memberships/orgs/acme Bearer fresh",
    ]);
  });
});
