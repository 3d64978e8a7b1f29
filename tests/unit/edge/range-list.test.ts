import assert from "node:assert/strict";
import { RangeList, type RangeListDeps, type RangeStore } from "../../../lib/edge/ranges.ts";
import { RangeSourceError } from "../../../lib/config/network-rules.ts";

const GOOD = JSON.stringify({
  creationTime: "2025-05-01T00:00:00.000000",
  prefixes: [{ ipv4Prefix: "23.102.140.112/28" }, { ipv6Prefix: "2603:1030:a::/48" }],
});
const GOOD2 = JSON.stringify({ prefixes: [{ ipv4Prefix: "198.51.100.0/24" }] });

class MemoryStore implements RangeStore {
  data = new Map<string, { text: string; fetchedAt: number }>();
  saves = 0;
  load(url: string) {
    return Promise.resolve(this.data.get(url) ?? null);
  }
  save(url: string, text: string, fetchedAt: number) {
    this.saves++;
    this.data.set(url, { text, fetchedAt });
    return Promise.resolve();
  }
}

type Log = ["info" | "warn" | "error", string];

function deps(overrides: Partial<RangeListDeps> = {}) {
  const logs: Log[] = [];
  const clock = { t: 1_700_000_000_000 };
  const store = new MemoryStore();
  const d: RangeListDeps = {
    fetch: globalThis.fetch,
    now: () => clock.t,
    store,
    log: (level, msg) => logs.push([level, msg]),
    ...overrides,
  };
  return { d, logs, clock, store: d.store as MemoryStore };
}

// RangeList over real HTTP on 127.0.0.1:0 (fakes only where a server cannot misbehave enough).

type Route = (req: Request) => Response | Promise<Response>;

/**
 * Serve `routes` on 127.0.0.1:0 for the body of one test; always shut down. `beforeShutdown`
 * releases handlers still waiting (shutdown waits for them).
 */
async function withServer(
  routes: Record<string, Route>,
  fn: (base: string, hits: Map<string, number>) => Promise<void>,
  beforeShutdown: () => void = () => {},
): Promise<void> {
  const hits = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    return routes[path]?.(req) ?? new Response("no route", { status: 404 });
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, hits);
  } finally {
    beforeShutdown();
    await server.shutdown();
  }
}

function json(text: string): Response {
  return new Response(text, { headers: { "content-type": "application/json" } });
}

/** A body of `total` bytes sent in chunks, with no Content-Length. */
function streamed(total: number, chunk = 64 * 1024): Response {
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= total) return c.close();
      const n = Math.min(chunk, total - sent);
      sent += n;
      c.enqueue(new Uint8Array(n).fill(0x20));
    },
  });
  return new Response(body, { headers: { "content-type": "application/json" } });
}

Deno.test("RangeList: a good document is loaded, matched and persisted", async () => {
  await withServer({ "/r.json": () => json(GOOD) }, async (base) => {
    const { d, logs, store, clock } = deps();
    const list = new RangeList(`${base}/r.json`, d);
    assert.equal(list.current().size, 0);
    assert.ok(!list.current().has("23.102.140.113"));
    assert.deepEqual(list.status(), {
      url: `${base}/r.json`,
      count: 0,
      fetchedAt: null,
      ageSeconds: null,
      lastError: null,
    });
    assert.equal(await list.refresh(), true);
    assert.ok(list.current().has("23.102.140.113"));
    assert.ok(list.current().has("::ffff:23.102.140.127"));
    assert.ok(list.current().has("2603:1030:a:1::9"));
    assert.ok(!list.current().has("23.102.140.128"));
    assert.deepEqual(store.data.get(`${base}/r.json`), { text: GOOD, fetchedAt: clock.t });
    clock.t += 90_500;
    assert.deepEqual(list.status(), {
      url: `${base}/r.json`,
      count: 2,
      fetchedAt: clock.t - 90_500,
      ageSeconds: 90,
      lastError: null,
    });
    assert.ok(logs.some(([l, m]) => l === "info" && m.includes("loaded 2 ranges")));
  });
});

/** Run one failing download against a never-loaded list and return its log and status. */
async function expectFailure(
  route: Route,
  reason: RegExp,
  extra: Partial<RangeListDeps> = {},
  beforeShutdown?: () => void,
) {
  await withServer({ "/r.json": route, "/target.json": () => json(GOOD) }, async (base, hits) => {
    const { d, logs, store } = deps(extra);
    const list = new RangeList(`${base}/r.json`, d);
    assert.equal(await list.refresh(), false);
    assert.equal(list.current().size, 0);
    assert.ok(!list.current().has("23.102.140.113"));
    assert.match(list.status().lastError ?? "", reason);
    assert.equal(store.saves, 0);
    assert.equal(logs.length, 1);
    const [level, msg] = logs[0];
    assert.equal(level, "error");
    assert.ok(msg.includes(`${base}/r.json`), msg);
    assert.match(msg, reason);
    assert.match(msg, /matches NOTHING \(fail closed\)/);
    assert.equal(hits.get("/target.json"), undefined, "a redirect was followed");
  }, beforeShutdown);
}

Deno.test("RangeList: a 302 redirect is a failure and is not followed", async () => {
  await expectFailure(
    (req) => Response.redirect(new URL("/target.json", req.url), 302),
    /redirect refused \(HTTP 302\)/,
  );
  await expectFailure(
    (req) => Response.redirect(new URL("/target.json", req.url), 308),
    /redirect refused \(HTTP 308\)/,
  );
});

Deno.test("RangeList: a 500 (and any non-200) is a failure", async () => {
  await expectFailure(() => new Response("oops", { status: 500 }), /HTTP 500, expected 200/);
  await expectFailure(() => new Response(GOOD, { status: 203 }), /HTTP 203, expected 200/);
  await expectFailure(() => new Response(null, { status: 204 }), /HTTP 204/);
});

Deno.test("RangeList: invalid JSON, empty and non-UTF-8 bodies are failures", async () => {
  await expectFailure(() => json("<html>maintenance</html>"), /not valid JSON/);
  await expectFailure(() => json('{"prefixes":[]}'), /prefixes is empty/);
  await expectFailure(() => json(""), /not valid JSON/);
  await expectFailure(
    () => new Response(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
    /not UTF-8/,
  );
  await expectFailure(
    () => json('{"prefixes":[{"ipv4Prefix":"1.2.3.0/24"},{"ipv4Prefix":"bad"}]}'),
    /prefixes\[1\]\.ipv4Prefix/,
  );
});

Deno.test("RangeList: a slow response times out (headers never come)", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  await expectFailure(
    async () => {
      await released;
      return json(GOOD);
    },
    /timed out/,
    { timeoutMs: 100 },
    release,
  );
});

Deno.test("RangeList: a body that stalls part-way times out", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const route = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        async start(c) {
          c.enqueue(new TextEncoder().encode('{"prefixes":['));
          await released;
          c.close();
        },
      }),
    );
  await withServer({ "/r.json": route }, async (base) => {
    const { d, logs } = deps({ timeoutMs: 150 });
    const list = new RangeList(`${base}/r.json`, d);
    const started = Date.now();
    assert.equal(await list.refresh(), false);
    assert.ok(Date.now() - started < 5000);
    assert.equal(list.status().lastError, "timed out");
    assert.match(logs[0][1], /timed out/);
  }, release);
});

Deno.test("RangeList: an oversized streamed body is cut off at the cap", async () => {
  // Over the real 1 MiB default, without Content-Length, so only the streaming cap can catch it.
  await expectFailure(() => streamed(1024 * 1024 + 1), /body larger than 1048576 bytes/);
  // Exactly at the cap is fine (it is whitespace, so it then fails validation, not the cap).
  await expectFailure(() => streamed(4096), /not valid JSON/, { maxBytes: 4096 });
  await expectFailure(() => streamed(4097), /body larger than 4096 bytes/, { maxBytes: 4096 });
});

Deno.test("RangeList: a declared Content-Length over the cap is refused up front", async () => {
  await expectFailure(() => json(GOOD.padEnd(5000, " ")), /body larger than 1000 bytes/, {
    maxBytes: 1000,
  });
  // Refused before reading a single chunk, and the body is released.
  let pulls = 0;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      pulls++;
      c.enqueue(new TextEncoder().encode(GOOD));
      c.close();
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  const fakeFetch = () =>
    Promise.resolve(new Response(body, { headers: { "content-length": "2000000" } }));
  const { d } = deps({ fetch: fakeFetch as typeof fetch });
  const list = new RangeList("https://ranges.example/r.json", d);
  assert.equal(await list.refresh(), false);
  assert.equal(pulls, 0);
  assert.ok(cancelled, "body not cancelled");
  assert.match(list.status().lastError ?? "", /body larger than 1048576 bytes/);
});

Deno.test("RangeList: the cap does not trust a lying Content-Length (fake streaming body)", async () => {
  let pulls = 0;
  const fakeFetch = (_input: RequestInfo | URL, init?: RequestInit) => {
    assert.equal(init?.redirect, "manual");
    assert.ok(init?.signal instanceof AbortSignal);
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        // Ends after 256 KiB so a missing cap fails the test instead of hanging it.
        if (++pulls > 256) return c.close();
        c.enqueue(new Uint8Array(1024).fill(0x20));
      },
    }, { highWaterMark: 0 });
    return Promise.resolve(new Response(body, { headers: { "content-length": "10" } }));
  };
  const { d, logs } = deps({ fetch: fakeFetch as typeof fetch, maxBytes: 8 * 1024 });
  const list = new RangeList("https://ranges.example/r.json", d);
  assert.equal(await list.refresh(), false);
  assert.match(list.status().lastError ?? "", /body larger than 8192 bytes/);
  // An endless body: reading stopped just past the cap instead of running forever.
  assert.ok(pulls <= 10, `read ${pulls} chunks`);
  assert.match(logs[0][1], /matches NOTHING/);
});

Deno.test("RangeList: a failed refresh keeps the last good list", async () => {
  let mode: "good" | "500" | "bad" = "good";
  const route = () =>
    mode === "good"
      ? json(GOOD)
      : mode === "500"
      ? new Response("down", { status: 500 })
      : json('{"prefixes":[{"ipv4Prefix":"0.0.0.0/0"},{"cidr":"x"}]}');
  await withServer({ "/r.json": route }, async (base) => {
    const { d, logs, store, clock } = deps();
    const list = new RangeList(`${base}/r.json`, d);
    assert.equal(await list.refresh(), true);
    const goodAt = clock.t;
    for (const m of ["500", "bad"] as const) {
      mode = m;
      clock.t += 3600_000;
      assert.equal(await list.refresh(), false);
      assert.ok(list.current().has("23.102.140.113"), "last good list dropped");
      assert.ok(!list.current().has("8.8.8.8"), "a rejected document widened access");
      assert.equal(list.status().count, 2);
      assert.equal(list.status().fetchedAt, goodAt);
      assert.notEqual(list.status().lastError, null);
      const [level, msg] = logs.at(-1)!;
      assert.equal(level, "error");
      assert.match(msg, /keeping the last good list \(2 ranges, \d+ s old\)/);
      assert.doesNotMatch(msg, /NOTHING/);
    }
    assert.equal(store.data.get(`${base}/r.json`)?.text, GOOD, "a bad document was persisted");
    assert.equal(store.saves, 1);
    // Recovery swaps in the new document and clears the error.
    mode = "good";
    assert.equal(await list.refresh(), true);
    assert.equal(list.status().lastError, null);
  });
});

Deno.test("RangeList: a fresh instance loads the cached copy when the download fails", async () => {
  let up = true;
  const route = () => up ? json(GOOD) : new Response("down", { status: 503 });
  await withServer({ "/r.json": route }, async (base) => {
    const first = deps();
    assert.equal(await new RangeList(`${base}/r.json`, first.d).refresh(), true);
    up = false;
    // Same store, new process.
    const logs: Log[] = [];
    const second = new RangeList(`${base}/r.json`, {
      ...first.d,
      log: (level, msg) => logs.push([level, msg]),
    });
    assert.equal(await second.loadCached(), true);
    assert.ok(second.current().has("23.102.140.113"));
    assert.equal(second.status().fetchedAt, first.clock.t);
    assert.equal(await second.refresh(), false);
    assert.ok(second.current().has("23.102.140.113"));
    assert.match(logs.at(-1)![1], /HTTP 503.*keeping the last good list/);
  });
});

Deno.test("RangeList: never loaded means match nothing, logged at every failed attempt", async () => {
  await withServer({ "/r.json": () => new Response("", { status: 500 }) }, async (base) => {
    const { d, logs } = deps();
    const list = new RangeList(`${base}/r.json`, d, "openai");
    assert.equal(await list.loadCached(), false);
    for (let i = 0; i < 3; i++) assert.equal(await list.refresh(), false);
    const nothing = logs.filter(([l, m]) => l === "error" && m.includes("matches NOTHING"));
    assert.equal(nothing.length, 3);
    assert.match(nothing[0][1], /\(preset openai\)/);
    assert.equal(list.current().size, 0);
    assert.ok(!list.current().has("23.102.140.113"));
  });
});

Deno.test("RangeList: a corrupt cached copy is ignored with a log line", async () => {
  const url = "https://ranges.example/r.json";
  const cases = [
    { text: "{not json", fetchedAt: 1 },
    { text: '{"prefixes":[]}', fetchedAt: 1 },
    { text: GOOD, fetchedAt: Number.NaN },
    { text: 5 as unknown as string, fetchedAt: 1 },
  ];
  for (const record of cases) {
    const { d, logs, store } = deps();
    store.data.set(url, record);
    const list = new RangeList(url, d);
    assert.equal(await list.loadCached(), false);
    assert.equal(list.current().size, 0);
    assert.equal(list.status().fetchedAt, null);
    assert.equal(logs.length, 1);
    assert.equal(logs[0][0], "warn");
    assert.match(logs[0][1], /ignoring corrupt cached copy/);
  }
  // A store that throws is logged, not fatal.
  const { d, logs } = deps({
    store: { load: () => Promise.reject(new Error("disk gone")), save: () => Promise.resolve() },
  });
  assert.equal(await new RangeList(url, d).loadCached(), false);
  assert.match(logs[0][1], /cannot read cached copy: Error: disk gone/);
});

Deno.test("RangeList: a store that cannot save still swaps the good list in", async () => {
  await withServer({ "/r.json": () => json(GOOD2) }, async (base) => {
    const { d, logs } = deps({
      store: { load: () => Promise.resolve(null), save: () => Promise.reject(new Error("ro")) },
    });
    const list = new RangeList(`${base}/r.json`, d);
    assert.equal(await list.refresh(), true);
    assert.ok(list.current().has("198.51.100.1"));
    assert.ok(logs.some(([l, m]) => l === "warn" && m.includes("could not persist")));
  });
});

Deno.test("RangeList: overlapping refreshes share one download", async () => {
  await withServer({ "/r.json": () => json(GOOD) }, async (base, hits) => {
    const { d } = deps();
    const list = new RangeList(`${base}/r.json`, d);
    const results = await Promise.all([list.refresh(), list.refresh(), list.refresh()]);
    assert.deepEqual(results, [true, true, true]);
    assert.equal(hits.get("/r.json"), 1);
    await list.refresh();
    assert.equal(hits.get("/r.json"), 2);
  });
});

Deno.test("RangeList: close() aborts a download in flight without an error log", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const route = async () => {
    await released;
    return json(GOOD);
  };
  await withServer({ "/r.json": route }, async (base) => {
    const { d, logs } = deps();
    const list = new RangeList(`${base}/r.json`, d);
    const pending = list.refresh();
    await new Promise((r) => setTimeout(r, 30));
    list.close();
    assert.equal(await pending, false);
    assert.equal(await list.refresh(), false);
    assert.equal(logs.filter(([l]) => l === "error").length, 0);
  }, release);
});

Deno.test("RangeList: the constructor rejects unsafe URLs", () => {
  const { d } = deps();
  assert.throws(() => new RangeList("http://openai.com/chatgpt-actions.json", d), RangeSourceError);
  assert.throws(() => new RangeList("https://a:b@openai.com/x.json", d), RangeSourceError);
});
