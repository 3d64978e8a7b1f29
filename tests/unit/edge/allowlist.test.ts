import assert from "node:assert/strict";
import { NetworkConfigError } from "../../../lib/config/check.ts";
import { NetworkAllowList, type NetworkAllowListDeps } from "../../../lib/edge/ip-allowlist.ts";
import { OPENAI_RANGE_URLS, type RangeStore } from "../../../lib/edge/ranges.ts";

const DOC_A = JSON.stringify({ prefixes: [{ ipv4Prefix: "198.51.100.0/24" }] });
const DOC_B = JSON.stringify({ prefixes: [{ ipv6Prefix: "2001:db8:b::/48" }] });

class MemoryStore implements RangeStore {
  data = new Map<string, { text: string; fetchedAt: number }>();
  load(url: string) {
    return Promise.resolve(this.data.get(url) ?? null);
  }
  save(url: string, text: string, fetchedAt: number) {
    this.data.set(url, { text, fetchedAt });
    return Promise.resolve();
  }
}

/** A fetch that never leaves the process: answers from `docs` by URL, 503 otherwise. */
function fakeFetch(docs: Record<string, string>, calls: string[] = []): typeof fetch {
  return ((input: RequestInfo | URL) => {
    const url = String(input);
    calls.push(url);
    const body = docs[url];
    return Promise.resolve(
      body === undefined ? new Response("down", { status: 503 }) : new Response(body),
    );
  }) as typeof fetch;
}

function deps(over: Partial<NetworkAllowListDeps> = {}) {
  const logs: [string, string][] = [];
  const d: NetworkAllowListDeps = {
    fetch: fakeFetch({}),
    now: () => 1_700_000_000_000,
    store: new MemoryStore(),
    log: (level, msg) => logs.push([level, msg]),
    ...over,
  };
  return { d, logs };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("allow-list: absent or empty means disabled, and everything is allowed", () => {
  for (const config of [{}, { allow: [] }, { allow: [], rangeSources: [] }]) {
    const list = new NetworkAllowList(config, deps().d);
    assert.equal(list.enabled, false);
    assert.ok(list.allows("8.8.8.8"));
    assert.ok(list.allows("2001:db8::1"));
    assert.deepEqual(list.status(), { enabled: false, staticRanges: 0, lists: [] });
  }
});

Deno.test("allow-list: static CIDRs and the anthropic preset", () => {
  const list = new NetworkAllowList(
    { allow: ["anthropic", "10.0.0.0/8", "2001:db8::/32"] },
    deps().d,
  );
  assert.equal(list.enabled, true);
  assert.ok(list.allows("160.79.104.1"));
  assert.ok(list.allows("160.79.111.255"));
  assert.ok(!list.allows("160.79.112.0"));
  assert.ok(list.allows("::ffff:160.79.105.5"), "mapped IPv6 client");
  assert.ok(list.allows("10.20.30.40"));
  assert.ok(list.allows("2001:db8::9"));
  assert.ok(!list.allows("8.8.8.8"));
  // The newer outbound /20 of the localized pages is part of the preset, edges included.
  assert.ok(list.allows("153.61.208.0"));
  assert.ok(list.allows("153.61.223.255"));
  assert.ok(!list.allows("153.61.224.0"));
  assert.ok(!list.allows("153.61.207.255"));
  // The retired single addresses are not.
  assert.ok(!list.allows("34.162.46.92"));
  assert.ok(!list.allows("not an ip"));
  assert.ok(!list.allows(""));
  assert.equal(list.status().staticRanges, 4);
  assert.equal(list.lists.length, 0);
});

Deno.test("allow-list: the openai preset is the three documents and matches nothing unloaded", () => {
  const list = new NetworkAllowList({ allow: ["openai", "openai"] }, deps().d);
  assert.deepEqual(list.lists.map((l) => l.url), [...OPENAI_RANGE_URLS]);
  assert.equal(list.enabled, true);
  assert.ok(!list.allows("23.102.140.113"));
  assert.ok(!list.allows("127.0.0.1"));
  assert.deepEqual(
    list.status().lists.map((s) => [s.count, s.fetchedAt]),
    [[0, null], [0, null], [0, null]],
  );
});

Deno.test("allow-list: config errors name network.allow[i] / network.rangeSources[i]", () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ allow: ["anthropic", "openia"] }, "network.allow[1]", /unknown preset openia/],
    [{ allow: ["OpenAI"] }, "network.allow[0]", /unknown preset/],
    [{ allow: ["10.0.0.0/33"] }, "network.allow[0]", /10\.0\.0\.0\/33: prefix length out of/],
    [{ allow: ["10.0.0.0/8", "1.2.3"] }, "network.allow[1]", /not an IP address/],
    [{ allow: [12] }, "network.allow[0]", /must be a string/],
    [{ allow: "openai" }, "network.allow", /must be an array/],
    [{ rangeSources: ["http://example.com/r.json"] }, "network.rangeSources[0]", /https/],
    [
      { rangeSources: ["https://ok.example/r.json", "https://u:p@x.example/r.json"] },
      "network.rangeSources[1]",
      /credentials/,
    ],
    [{ rangeSources: "https://x.example/r.json" }, "network.rangeSources", /must be an array/],
  ];
  for (const [config, path, reason] of cases) {
    assert.throws(() => new NetworkAllowList(config, deps().d), (e: unknown) => {
      assert.ok(e instanceof NetworkConfigError, JSON.stringify(config));
      assert.equal(e.path, path);
      assert.match(e.message, reason);
      assert.ok(e.message.startsWith(`${path}: `));
      return true;
    });
  }
  assert.throws(() => new NetworkAllowList({}, deps({ refreshIntervalMs: 0 }).d), RangeError);
});

Deno.test("allow-list: rangeSources alone enable the list (fail closed until loaded)", () => {
  const list = new NetworkAllowList({ rangeSources: ["https://r.example/a.json"] }, deps().d);
  assert.equal(list.enabled, true);
  assert.ok(!list.allows("198.51.100.1"));
});

Deno.test("allow-list: start() downloads from a real server; a failing list adds nothing", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/a.json") return new Response(DOC_A);
    return new Response("nope", { status: 500 });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const { d, logs } = deps({ fetch: globalThis.fetch });
  const list = new NetworkAllowList({
    allow: ["203.0.113.0/24"],
    rangeSources: [`${base}/a.json`, `${base}/b.json`],
  }, d);
  try {
    await list.start();
    assert.ok(list.allows("198.51.100.77"), "downloaded range");
    assert.ok(list.allows("203.0.113.1"), "static range");
    assert.ok(!list.allows("2001:db8:b::1"), "the failed list contributed something");
    assert.ok(!list.allows("8.8.8.8"));
    const [a, b] = list.status().lists;
    assert.deepEqual([a.url, a.count, a.ageSeconds, a.lastError], [`${base}/a.json`, 1, 0, null]);
    assert.deepEqual([b.count, b.fetchedAt, b.lastError], [0, null, "HTTP 500, expected 200"]);
    assert.ok(logs.some(([l, m]) => l === "error" && m.includes(`${base}/b.json`)));
  } finally {
    list.stop();
    await server.shutdown();
  }
});

Deno.test("allow-list: start() uses cached copies when downloads fail", async () => {
  const store = new MemoryStore();
  store.data.set("https://r.example/a.json", { text: DOC_A, fetchedAt: 1_699_999_000_000 });
  const { d } = deps({ store });
  const list = new NetworkAllowList({ rangeSources: ["https://r.example/a.json"] }, d);
  try {
    await list.start();
    assert.ok(list.allows("198.51.100.1"));
    assert.equal(list.status().lists[0].ageSeconds, 1000);
    assert.match(list.status().lists[0].lastError ?? "", /HTTP 503/);
  } finally {
    list.stop();
  }
});

Deno.test("allow-list: refreshes periodically and stop() ends it", async () => {
  const calls: string[] = [];
  const url = "https://r.example/a.json";
  const { d } = deps({ fetch: fakeFetch({ [url]: DOC_A }, calls), refreshIntervalMs: 15 });
  const list = new NetworkAllowList({ rangeSources: [url] }, d);
  try {
    await list.start();
    for (let i = 0; i < 100 && calls.length < 4; i++) await sleep(10);
    assert.ok(calls.length >= 4, `only ${calls.length} downloads`);
  } finally {
    list.stop();
  }
  const after = calls.length;
  await sleep(60);
  assert.equal(calls.length, after, "refreshed after stop()");
});

Deno.test("allow-list: after a failure it retries at retryIntervalMs, then slows down", async () => {
  const calls: string[] = [];
  const url = "https://r.example/a.json";
  const docs: Record<string, string> = {};
  const { d } = deps({
    fetch: fakeFetch(docs, calls),
    refreshIntervalMs: 3600_000,
    retryIntervalMs: 10,
  });
  const list = new NetworkAllowList({ rangeSources: [url] }, d);
  try {
    await list.start();
    assert.ok(!list.allows("198.51.100.1"));
    for (let i = 0; i < 100 && calls.length < 3; i++) await sleep(10);
    assert.ok(calls.length >= 3, "no retries after a failure");
    docs[url] = DOC_A;
    for (let i = 0; i < 100 && !list.allows("198.51.100.1"); i++) await sleep(10);
    assert.ok(list.allows("198.51.100.1"), "retry did not pick up the recovered document");
    const settled = calls.length;
    await sleep(60);
    assert.equal(calls.length, settled, "kept retrying after success");
  } finally {
    list.stop();
  }
});

Deno.test("allow-list: stop() during start() cancels the download and schedules nothing", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  let hits = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    hits++;
    await released;
    return new Response(DOC_A);
  });
  const { d, logs } = deps({ fetch: globalThis.fetch, refreshIntervalMs: 10 });
  const list = new NetworkAllowList({
    rangeSources: [`http://127.0.0.1:${server.addr.port}/a.json`],
  }, d);
  try {
    const starting = list.start();
    for (let i = 0; i < 100 && hits === 0; i++) await sleep(5);
    list.stop();
    await starting;
    await sleep(40);
    assert.equal(hits, 1);
    assert.ok(!list.allows("198.51.100.1"));
    assert.equal(logs.filter(([l]) => l === "error").length, 0);
    await assert.rejects(() => list.start(), /called twice/);
  } finally {
    release();
    await server.shutdown();
  }
});

Deno.test("allow-list: a replacement instance picks up the old one's persisted lists", async () => {
  const url = "https://r.example/b.json";
  const store = new MemoryStore();
  const old = new NetworkAllowList(
    { rangeSources: [url] },
    deps({ store, fetch: fakeFetch({ [url]: DOC_B }) }).d,
  );
  await old.start();
  old.stop();
  assert.ok(old.allows("2001:db8:b::5"), "a stopped list keeps answering until swapped out");
  // The config changed and the network is down: the new instance is ready from the store.
  const next = new NetworkAllowList(
    { allow: ["anthropic"], rangeSources: [url] },
    deps({ store }).d,
  );
  try {
    await next.start();
    assert.ok(next.allows("2001:db8:b::5"));
    assert.ok(next.allows("160.79.104.10"));
  } finally {
    next.stop();
  }
});
