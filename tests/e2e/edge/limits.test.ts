/**
 * Per-client-IP rate limits (token buckets), end to end: /register, /token with /revoke,
 * /authorize with /consent and /auth/callback, and failed bearer checks each trip at their burst
 * with 429 + Retry-After, recover after the advertised wait, and are counted per client IP (the
 * IP behind the trusted loopback peer, so another forwarded address is unaffected).
 */
import assert from "node:assert/strict";
import type { ProxyProcess } from "../../helpers/proxy.ts";
import { fakeGitHub } from "../../helpers/oauth.ts";
import { CONCURRENT, type LoginOptions, step, withLogin } from "../../helpers/login.ts";
import { signInForTokens } from "../../helpers/oauth-flows.ts";
import {
  accessLines,
  from,
  MCP_HEADERS,
  sleep,
  syncAccess,
  TRUST_LOOPBACK,
} from "./edge-helpers.ts";
import type { FakeGitHub } from "../../fixtures/fake-github.ts";

// One token every 5 s: a loaded machine sends a burst, and the checks right after it, well within
// one refill, so the counts are exact; the recovery waits stay a few seconds.
const RATE = "12/min";
const BURST = 12;

/** The limits of the scenarios sharing one proxy (every bucket at `RATE`). */
const ALL_AT_RATE = {
  registerRate: RATE,
  tokenRate: RATE,
  authorizeRate: RATE,
  failedAuthRate: RATE,
};

function limited(gh: FakeGitHub, limits: Record<string, string>): LoginOptions {
  return { gh, config: () => ({ limits, network: TRUST_LOOPBACK }) };
}

/** Asserts a 429 with a whole-seconds Retry-After ≥ 1; returns the seconds. */
async function assertLimited(res: Response, what: string): Promise<number> {
  // Any other answer may be a stream (the legacy SSE endpoint): its body is not read.
  if (res.status !== 429) await res.body?.cancel();
  const text = res.status === 429 ? await res.text() : "";
  assert.equal(res.status, 429, `${what}: ${res.status} ${text}`);
  assert.deepEqual(JSON.parse(text), { error: "rate_limited" }, what);
  const retry = res.headers.get("retry-after");
  assert.match(retry ?? "", /^[1-9]\d*$/, `${what}: Retry-After ${retry}`);
  assert.equal(res.headers.get("www-authenticate"), null, `${what}: no OAuth challenge`);
  return Number(retry);
}

async function notLimited(res: Response, what: string): Promise<number> {
  const text = await res.text();
  assert.notEqual(res.status, 429, `${what}: ${text}`);
  return res.status;
}

type Send = (ip: string) => Promise<Response>;

const FORM = { "content-type": "application/x-www-form-urlencoded" };

function endpoints(origin: string): Record<string, Send> {
  return {
    register: (ip) =>
      fetch(`${origin}/register`, {
        method: "POST",
        headers: { "content-type": "application/json", ...from(ip) },
        body: JSON.stringify({ client_name: "rate", redirect_uris: ["http://127.0.0.1:9/cb"] }),
      }),
    token: (ip) =>
      fetch(`${origin}/token`, {
        method: "POST",
        headers: { ...FORM, ...from(ip) },
        body: "grant_type=refresh_token&refresh_token=x&client_id=y",
      }),
    revoke: (ip) =>
      fetch(`${origin}/revoke`, {
        method: "POST",
        headers: { ...FORM, ...from(ip) },
        body: "token=x&client_id=y",
      }),
    authorize: (ip) => fetch(`${origin}/authorize?client_id=x`, { headers: from(ip) }),
    consent: (ip) =>
      fetch(`${origin}/consent`, {
        method: "POST",
        headers: { ...FORM, ...from(ip) },
        body: "txn=x&csrf=y&action=allow",
        redirect: "manual",
      }),
    callback: (ip) =>
      fetch(`${origin}/auth/callback?code=x&state=y`, { headers: from(ip), redirect: "manual" }),
  };
}

/**
 * Trips one bucket from `ip` with `BURST` requests (spread over `sends`), checks the next one is
 * refused, the whole class with it, while another IP is not, and checks `recover` passes once
 * its Retry-After has passed (taking the one token that wait brings).
 */
async function tripAndRecover(
  proxy: ProxyProcess,
  name: string,
  sends: Send[],
  [ip, other]: [string, string],
  recover: Send,
): Promise<void> {
  for (let i = 0; i < BURST; i++) {
    await notLimited(await sends[i % sends.length](ip), `${name} #${i}`);
  }
  const retry = await assertLimited(
    await sends[BURST % sends.length](ip),
    `${name} over the burst`,
  );
  for (const send of sends) await assertLimited(await send(ip), `${name}: the whole class`);
  await notLimited(await sends[0](other), `${name} from another IP`);
  await syncAccess(proxy);
  assert.ok(
    accessLines(proxy).some((l) => l.status === 429 && l.ip === ip),
    `${name}: a 429 access-log line for ${ip}`,
  );
  await sleep(retry * 1000 + 50);
  await notLimited(await recover(ip), `${name} after Retry-After`);
  // That took the one token the wait brought: the next request waits for the next one.
  await assertLimited(await recover(ip), `${name}: the refilled token is spent`);
}

/** /register, /token+/revoke, /authorize+/consent+/auth/callback: trip, per IP, recover. */
async function classBuckets(proxy: ProxyProcess): Promise<void> {
  const e = endpoints(proxy.origin);
  const token = [e.token, e.revoke];
  const authorize = [e.authorize, e.consent, e.callback];
  // The classes have separate buckets, and so have client IPs: every endpoint recovers from its
  // own tripped IP, all side by side, so the waits overlap.
  await Promise.all([
    tripAndRecover(proxy, "register", [e.register], ["203.0.113.1", "203.0.113.2"], e.register),
    tripAndRecover(proxy, "token", token, ["203.0.113.3", "203.0.113.4"], e.token),
    tripAndRecover(proxy, "revoke", token, ["203.0.113.5", "203.0.113.6"], e.revoke),
    tripAndRecover(
      proxy,
      "authorize",
      authorize,
      ["2001:db8:0:5::5", "2001:db8:0:6::6"],
      e.authorize,
    ),
    tripAndRecover(proxy, "consent", authorize, ["2001:db8:0:7::7", "2001:db8:0:8::8"], e.consent),
    tripAndRecover(
      proxy,
      "callback",
      authorize,
      ["2001:db8:0:9::9", "2001:db8:0:a::a"],
      e.callback,
    ),
  ]);
  // The same client IP written another way is the same bucket (canonical form).
  for (let i = 0; i < BURST; i++) {
    await notLimited(await e.register("198.51.100.9"), `register #${i}`);
  }
  await assertLimited(await e.register("::ffff:198.51.100.9"), "mapped form, same bucket");
}

/** Failed bearer checks trip failedAuthRate; then even a valid token waits; per IP; recovers. */
async function failedBearerChecks(proxy: ProxyProcess): Promise<void> {
  const { tokens } = await signInForTokens(proxy);
  const get = (ip: string, token?: string) =>
    fetch(proxy.url("fx"), {
      headers: {
        ...MCP_HEADERS,
        ...from(ip),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
    });
  // A valid token passes the bearer check (then 400: no session): successes never count.
  const valid = async (ip: string, what: string) => {
    const res = await get(ip, tokens.access_token);
    const text = await res.text();
    assert.equal(res.status, 400, `${what}: ${text}`);
    assert.match(text, /Mcp-Session-Id/);
  };
  const bad = async (ip: string, token: string, what: string) => {
    const res = await get(ip, token);
    await res.body?.cancel();
    assert.equal(res.status, 401, what);
  };
  const A = "203.0.113.50";
  const B = "203.0.113.51";
  for (let i = 0; i < 2 * BURST; i++) await valid(A, `valid #${i}`);
  const guesses = ["mop_at_guess1", "mop_at_guess2", "gho_notours"];
  for (let i = 0; i < BURST; i++) await bad(A, guesses[i % 3], `guess #${i}`);
  const retry = await assertLimited(await get(A, "Basic-ish"), "the next guess");
  // The bucket is checked before the token: the right token is refused too, from that IP.
  await assertLimited(await get(A, tokens.access_token), "a valid token from the guessing IP");
  // The legacy endpoint shares the bucket.
  const sse = await fetch(`${proxy.origin}/sse/fx`, {
    headers: { ...from(A), authorization: `Bearer ${tokens.access_token}` },
  });
  await assertLimited(sse, "legacy SSE from the guessing IP");
  // Without credentials there is nothing to guess: the usual 401 challenge.
  const anonymous = await get(A);
  await anonymous.body?.cancel();
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get("www-authenticate") ?? "", /^Bearer /);
  // Another client IP is unaffected; its requests without credentials (the 401 that starts
  // discovery) are not failed bearer checks and never count.
  for (let i = 0; i < 2 * BURST; i++) {
    const res = await get(B);
    await res.body?.cancel();
    assert.equal(res.status, 401, `anonymous #${i}`);
  }
  await valid(B, "valid token, other IP");
  await bad(B, "mop_at_other", "bad token, other IP");
  // Recovery after Retry-After.
  await sleep(retry * 1000 + 50);
  await valid(A, "valid token after Retry-After");
  await bad(A, "mop_at_again", "a guess after Retry-After is checked again");
}

/** Every bucket keys an IPv6 client by its /64 (the default registerRate, 30/min, here). */
async function ipv6Prefixes(proxy: ProxyProcess): Promise<void> {
  const e = endpoints(proxy.origin);
  const rotating = (i: number) => `2001:db8:0:1::${(i + 1).toString(16)}`;
  // The default registerRate (30/min): 45 registrations from 45 addresses of one /64.
  const statuses: number[] = [];
  for (let i = 0; i < 45; i++) {
    const res = await e.register(rotating(i));
    await res.body?.cancel();
    statuses.push(res.status);
  }
  // The burst is spent by the 30th; the bucket refills one token per 2 s meanwhile.
  assert.ok(statuses.slice(0, 30).every((s) => s === 201), statuses.join(" "));
  assert.ok(statuses.slice(30).filter((s) => s === 429).length >= 10, statuses.join(" "));
  await assertLimited(await e.register("2001:db8:0:1:ffff:ffff:ffff:fffe"), "same /64");
  await notLimited(await e.register("2001:db8:0:2::1"), "the neighbouring /64");
  // The other buckets: token (and revoke), authorize (and consent, callback), failed auth.
  for (
    const [name, sends] of [["token", [e.token, e.revoke]], ["authorize", [
      e.authorize,
    ]]] as const
  ) {
    for (let i = 0; i < BURST; i++) {
      await notLimited(
        await sends[i % sends.length](`2001:db8:0:3::${100 + i}`),
        `${name} #${i}`,
      );
    }
    await assertLimited(await sends[0]("2001:db8:0:3::ffff"), `${name} from the same /64`);
    await notLimited(await sends[0]("2001:db8:0:4::1"), `${name} from another /64`);
  }
  const guess = (ip: string) =>
    fetch(proxy.url("fx"), {
      headers: { ...MCP_HEADERS, ...from(ip), authorization: "Bearer mop_at_guess" },
    });
  for (let i = 0; i < BURST; i++) {
    const res = await guess(`2001:db8:0:5::${i + 1}`);
    await res.body?.cancel();
    assert.equal(res.status, 401, `guess #${i}`);
  }
  await assertLimited(await guess("2001:db8:0:5::abcd"), "a guess from the same /64");
  await syncAccess(proxy);
  assert.ok(
    accessLines(proxy).some((l) => l.status === 429 && l.ip.startsWith("2001:db8:0:1::")),
    "the access log names the address, not the prefix",
  );
}

// The scenarios run side by side (separate client IPs, so separate buckets): their refill
// waits overlap. The IPv6 one needs the default registerRate, so it has its own proxy.
Deno.test("rate limits", async (t) => {
  const gh = await fakeGitHub();
  try {
    await Promise.all([
      withLogin(limited(gh, ALL_AT_RATE), ({ proxy }) =>
        Promise.all([
          step(
            t,
            proxy,
            "rate limits: /register, /token+/revoke, /authorize+/consent+/auth/callback trip with 429 + Retry-After, per IP, and recover",
            () => classBuckets(proxy),
            CONCURRENT,
          ),
          step(
            t,
            proxy,
            "rate limits: failed bearer checks trip failedAuthRate; then even a valid token gets 429 before it is checked; per IP; recovers",
            () => failedBearerChecks(proxy),
            CONCURRENT,
          ),
        ])),
      withLogin(
        limited(gh, { tokenRate: RATE, authorizeRate: RATE, failedAuthRate: RATE }),
        ({ proxy }) =>
          step(
            t,
            proxy,
            "rate limits: IPv6 clients are keyed by their /64 in every bucket, so rotating addresses inside one prefix is limited",
            () => ipv6Prefixes(proxy),
            CONCURRENT,
          ),
      ),
    ]);
  } finally {
    await gh.close();
  }
});
