import assert from "node:assert/strict";
import {
  cacheLifetimeMs,
  CimdError,
  type CimdErrorCode,
  CimdResolver,
  type CimdResolverOptions,
  type ClientMetadata,
  isCimdClientId,
  redirectAllowed,
  type SharedCimdCache,
  validateClientMetadata,
} from "../../../lib/oauth/cimd.ts";
import { RedirectPolicy } from "../../../lib/oauth/redirect.ts";
import { OAuthConfigError } from "../../../lib/config/check.ts";

type Handler = (req: Request, url: URL) => Response | Promise<Response>;

interface Local {
  base: string;
  host: string;
  hits: () => number;
  paths: string[];
}

/** Run `fn` against a real server on 127.0.0.1:0, always stopped afterwards. */
async function withServer(handler: Handler, fn: (local: Local) => Promise<void>): Promise<void> {
  const paths: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    paths.push(url.pathname);
    return handler(req, url);
  });
  const host = `127.0.0.1:${server.addr.port}`;
  try {
    await fn({ base: `http://${host}`, host, hits: () => paths.length, paths });
  } finally {
    await server.shutdown();
  }
}

function doc(clientId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_id: clientId,
    client_name: "Test Client",
    redirect_uris: ["http://localhost/callback", "https://app.example.com/cb"],
    token_endpoint_auth_method: "none",
    ...extra,
  };
}

function json(body: unknown, headers: Record<string, string> = {}, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** Serves `doc(url)` (or `body(url)`) at every path. */
function serveDoc(body: (id: string) => unknown = doc, headers: Record<string, string> = {}) {
  return (_req: Request, url: URL) => json(body(url.href), headers);
}

function noDns(): Promise<string[]> {
  throw new Error("DNS must not be consulted for this host");
}

function resolver(local: Local, options: Partial<CimdResolverOptions> = {}): CimdResolver {
  return new CimdResolver({
    fetch,
    now: () => 0,
    resolveDns: noDns,
    allowedHosts: [local.host],
    ...options,
  });
}

async function rejects(p: Promise<unknown>, code: CimdErrorCode, message?: RegExp) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof CimdError, `expected CimdError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    // Shown on an HTML page: no stack-ish or OS detail.
    assert.doesNotMatch(e.message, /os error|tcp|Error:|at file:/i);
    return true;
  });
}

Deno.test("isCimdClientId: https URLs with a path, canonical, no fragment or user info", () => {
  for (
    const ok of [
      "https://claude.ai/oauth/mcp-oauth-client-metadata",
      "https://claude.ai/oauth/claude-code-client-metadata",
      "https://chatgpt.com/oauth/abc_123/client.json",
      "https://chatgpt.com/oauth/codex/client.json",
      "https://meta.example.com:8443/client.json?v=1",
      "http://127.0.0.1:8080/client.json",
      "http://[::1]:8080/client.json",
    ]
  ) assert.equal(isCimdClientId(ok), true, ok);
  for (
    const bad of [
      "https://claude.ai",
      "https://claude.ai/",
      "http://claude.ai/oauth/x",
      "http://127.0.0.1/client.json", // loopback without a port: not a test server
      "http://localhost:8080/client.json", // a name, not a literal loopback address
      "http://10.0.0.1:8080/client.json",
      "https://claude.ai/oauth/x#",
      "https://claude.ai/oauth/x#frag",
      "https://user@claude.ai/oauth/x",
      "https://user:pw@claude.ai/oauth/x",
      "https://claude.ai/oauth/../x",
      "https://claude.ai/oauth/./x",
      "https://claude.ai/oauth/%2e%2e/x",
      "https://CLAUDE.ai/oauth/x",
      "https://claude.ai:443/oauth/x",
      "https://claude.ai\\oauth\\x",
      " https://claude.ai/oauth/x",
      "https://claude.ai/oauth/x ",
      "https://claude.ai/oa\tuth/x",
      "ftp://claude.ai/oauth/x",
      "my-client-id",
      "",
      `https://claude.ai/${"a".repeat(2100)}`,
    ]
  ) assert.equal(isCimdClientId(bad), false, bad);
  assert.equal(isCimdClientId(42 as unknown as string), false);
});

Deno.test("resolve: a good document from a real server, validated and cleaned", async () => {
  let accept: string | null = null;
  await withServer((req, url) => {
    accept = req.headers.get("accept");
    return json(
      doc(url.href, {
        client_name: "  Evil\u202e Corp\u0000\n  Tool  ",
        logo_uri: "https://app.example.com/logo.png",
        client_uri: "javascript:alert(1)",
        grant_types: ["authorization_code"],
      }),
      { "content-type": "application/json; charset=utf-8" },
    );
  }, async (local) => {
    const cimd = resolver(local);
    const id = `${local.base}/oauth/client.json`;
    const meta = await cimd.resolve(id);
    assert.deepEqual({ ...meta }, {
      client_id: id,
      client_name: "Evil Corp Tool",
      redirect_uris: ["http://localhost/callback", "https://app.example.com/cb"],
      token_endpoint_auth_method: "none",
      logo_uri: "https://app.example.com/logo.png",
    });
    assert.ok(Object.isFrozen(meta) && Object.isFrozen(meta.redirect_uris));
    assert.equal(accept, "application/json");
    assert.deepEqual(local.paths, ["/oauth/client.json"]);
  });
});

Deno.test("resolve: client_id must equal the retrieved URL byte for byte", async () => {
  for (
    const claimed of [
      (id: string) => `${id}/`,
      (id: string) => id.replace("/oauth/", "/OAuth/"),
      (id: string) => id.replace("127.0.0.1", "localhost"),
      (id: string) => `${id}?x`,
      () => "https://claude.ai/oauth/mcp-oauth-client-metadata",
      () => undefined,
      () => 42,
    ]
  ) {
    await withServer(serveDoc((id) => doc(id, { client_id: claimed(id) })), async (local) => {
      await rejects(
        resolver(local).resolve(`${local.base}/oauth/client.json`),
        "invalid_document",
        /client_id does not match/,
      );
    });
  }
});

Deno.test("resolve: a body that is not JSON, or not a JSON object, is refused", async () => {
  const cases: [Handler, CimdErrorCode, RegExp][] = [
    [
      () => new Response("<html>hi</html>", { headers: { "content-type": "text/html" } }),
      "fetch_failed",
      /not served as JSON/,
    ],
    [
      () => new Response('{"client_id": 1}', { headers: { "content-type": "text/plain" } }),
      "fetch_failed",
      /not served as JSON/,
    ],
    [() => new Response("{}"), "fetch_failed", /not served as JSON/], // text/plain by default
    [
      () => new Response("{not json", { headers: { "content-type": "application/json" } }),
      "invalid_document",
      /not valid JSON/,
    ],
    [
      () => new Response("", { headers: { "content-type": "application/json" } }),
      "invalid_document",
      /not valid JSON/,
    ],
    [
      () =>
        new Response(new Uint8Array([0x7b, 0xff, 0x7d]), {
          headers: { "content-type": "application/json" },
        }),
      "invalid_document",
      /UTF-8/,
    ],
    [(_r, u) => json([doc(u.href)]), "invalid_document", /not a JSON object/],
    [() => json(null), "invalid_document", /not a JSON object/],
    [() => json("string"), "invalid_document", /not a JSON object/],
  ];
  for (const [handler, code, message] of cases) {
    await withServer(handler, async (local) => {
      await rejects(resolver(local).resolve(`${local.base}/c.json`), code, message);
    });
  }
  // A structured-syntax JSON type is JSON too.
  await withServer(
    serveDoc(doc, { "content-type": "application/client-metadata+json" }),
    async (local) => {
      await resolver(local).resolve(`${local.base}/c.json`);
    },
  );
});

Deno.test("resolve: an oversized body is cut off while streaming, whatever its headers say", async () => {
  const kib = new Uint8Array(1024).fill(0x20);
  let chunksSent = 0;
  await withServer(() => {
    // A valid JSON prefix padded with spaces, streamed without Content-Length, never ending.
    let first = true;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        chunksSent++;
        controller.enqueue(first ? new TextEncoder().encode("{") : kib);
        first = false;
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  }, async (local) => {
    await rejects(
      resolver(local).resolve(`${local.base}/big.json`),
      "fetch_failed",
      /larger than 16384 bytes/,
    );
  });
  assert.ok(chunksSent > 16);
  // Just over the cap, and a small cap given by the caller.
  await withServer(
    serveDoc((id) => doc(id, { pad: "x".repeat(16384) })),
    async (local) => {
      await rejects(resolver(local).resolve(`${local.base}/c.json`), "fetch_failed", /larger/);
      await rejects(
        resolver(local, { maxBytes: 100 }).resolve(`${local.base}/c.json`),
        "fetch_failed",
        /larger than 100 bytes/,
      );
    },
  );
  // Just under the cap is fine.
  await withServer(serveDoc((id) => doc(id, { pad: "x".repeat(15000) })), async (local) => {
    await resolver(local).resolve(`${local.base}/c.json`);
  });
});

Deno.test("resolve: redirects are never followed", async () => {
  for (const status of [301, 302, 303, 307, 308]) {
    await withServer((_req, url) => {
      if (url.pathname === "/target.json") return json(doc(url.href));
      return new Response(null, { status, headers: { location: "/target.json" } });
    }, async (local) => {
      await rejects(
        resolver(local).resolve(`${local.base}/c.json`),
        "fetch_failed",
        /redirect/,
      );
      assert.deepEqual(local.paths, ["/c.json"], `status ${status}`);
    });
  }
});

Deno.test("resolve: anything but 200 is refused", async () => {
  for (const status of [500, 404, 204, 201, 403]) {
    await withServer(
      (_r, u) => status === 204 ? new Response(null, { status }) : json(doc(u.href), {}, status),
      async (local) => {
        await rejects(
          resolver(local).resolve(`${local.base}/c.json`),
          "fetch_failed",
          new RegExp(`HTTP ${status}`),
        );
      },
    );
  }
});

Deno.test("resolve: a network failure is reported without OS detail, cause kept", async () => {
  // A port that just stopped listening: connection refused.
  let gone: Local | undefined;
  await withServer(serveDoc(), (local) => {
    gone = local;
    return Promise.resolve();
  });
  const cimd = resolver(gone!);
  await assert.rejects(cimd.resolve(`${gone!.base}/c.json`), (e) => {
    assert.ok(e instanceof CimdError && e.code === "fetch_failed");
    assert.match(e.message, /could not be retrieved \(network error\)/);
    assert.doesNotMatch(e.message, /refused|os error|127\.0\.0\.1/i);
    assert.ok(e.cause instanceof Error);
    return true;
  });
});

Deno.test("resolve: a slow server hits the deadline (headers or body)", async () => {
  const { promise: release, resolve: releaseAll } = Promise.withResolvers<void>();
  await withServer(async (_req, url) => {
    if (url.pathname === "/slow-headers") {
      await release;
      return json(doc(url.href));
    }
    // Headers at once, then a body that stalls until the test ends.
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode("{"));
        await release;
        controller.close();
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  }, async (local) => {
    // Without a working deadline the server answers after 2 s and the assertions fail cleanly.
    const fallback = setTimeout(releaseAll, 2000);
    try {
      const cimd = resolver(local, { timeoutMs: 150 });
      const started = performance.now();
      await rejects(cimd.resolve(`${local.base}/slow-headers`), "fetch_failed", /within 0.15 s/);
      await rejects(cimd.resolve(`${local.base}/slow-body`), "fetch_failed", /within 0.15 s/);
      assert.ok(performance.now() - started < 2000);
    } finally {
      clearTimeout(fallback);
      releaseAll();
    }
  });
});

Deno.test("resolve: shared-secret auth methods and secrets are refused", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ token_endpoint_auth_method: "client_secret_basic" }, /client_secret_basic/],
    [{ token_endpoint_auth_method: "client_secret_post" }, /client_secret_post/],
    [{ token_endpoint_auth_method: "client_secret_jwt" }, /client_secret_jwt/],
    [{ token_endpoint_auth_method: "private_key_jwt" }, /only "none"/],
    [{ token_endpoint_auth_method: null }, /only "none"/],
    [{ client_secret: "s3cret" }, /client secret/],
    [{ client_secret_expires_at: 0 }, /client secret/],
  ];
  for (const [extra, message] of cases) {
    await withServer(serveDoc((id) => doc(id, extra)), async (local) => {
      await rejects(resolver(local).resolve(`${local.base}/c.json`), "invalid_document", message);
    });
  }
  // Absent means "none".
  await withServer(
    serveDoc((id) => doc(id, { token_endpoint_auth_method: undefined })),
    async (local) => {
      const meta = await resolver(local).resolve(`${local.base}/c.json`);
      assert.equal(meta.token_endpoint_auth_method, "none");
    },
  );
});

Deno.test("resolve: client_name and redirect_uris are required and checked", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ redirect_uris: undefined }, /redirect_uris must be a non-empty list/],
    [{ redirect_uris: [] }, /redirect_uris must be a non-empty list/],
    [{ redirect_uris: "http://localhost/callback" }, /redirect_uris must be a non-empty list/],
    [{ redirect_uris: ["http://localhost/cb", 7] }, /redirect_uris\[1\] is not a string/],
    [{ redirect_uris: ["http://evil.example/cb"] }, /redirect_uris\[0\].*loopback/],
    [{ redirect_uris: ["https://app.example.com/cb#x"] }, /fragment/],
    [{ redirect_uris: ["javascript:alert(1)"] }, /javascript/],
    [{ redirect_uris: ["cursor://anysphere.cursor-mcp/oauth/callback"] }, /custom scheme/],
    [{ client_name: undefined }, /no client_name/],
    [{ client_name: "   " }, /no client_name/],
    [{ client_name: 42 }, /no client_name/],
  ];
  for (const [extra, message] of cases) {
    await withServer(serveDoc((id) => doc(id, extra)), async (local) => {
      await rejects(resolver(local).resolve(`${local.base}/c.json`), "invalid_document", message);
    });
  }
  // A custom scheme is fine once the operator's policy allows that exact URI.
  const cursor = "cursor://anysphere.cursor-mcp/oauth/callback";
  await withServer(serveDoc((id) => doc(id, { redirect_uris: [cursor] })), async (local) => {
    const redirects = new RedirectPolicy({ extra: [cursor] });
    const meta = await resolver(local, { redirects }).resolve(`${local.base}/c.json`);
    assert.deepEqual(meta.redirect_uris, [cursor]);
  });
  // Long names are cut for display, not refused.
  await withServer(serveDoc((id) => doc(id, { client_name: "é".repeat(500) })), async (local) => {
    const meta = await resolver(local).resolve(`${local.base}/c.json`);
    assert.equal(meta.client_name, "é".repeat(200));
  });
});

Deno.test("resolve: hosts not on the allow-list are never contacted", async () => {
  await withServer(serveDoc(), async (local) => {
    const cimd = resolver(local, { allowedHosts: [] });
    await rejects(cimd.resolve(`${local.base}/c.json`), "host_not_allowed", /127\.0\.0\.1:\d+/);
    // Another port on the same address is another host.
    const other = resolver(local, { allowedHosts: ["127.0.0.1:1"] });
    await rejects(other.resolve(`${local.base}/c.json`), "host_not_allowed");
    assert.equal(local.hits(), 0);
  });
  let fetched = 0;
  const cimd = new CimdResolver({
    fetch: () => Promise.resolve(new Response(null, { status: 500 + fetched++ })),
    now: () => 0,
    resolveDns: noDns,
  });
  for (
    const id of [
      "https://evil.example/client.json",
      "https://claude.ai.evil.example/oauth/x",
      "https://evil.claude.ai/oauth/x",
      "https://claude.ai:8443/oauth/x",
    ]
  ) await rejects(cimd.resolve(id), "host_not_allowed");
  await rejects(cimd.resolve("not a url"), "invalid_client_id");
  await rejects(cimd.resolve("https://claude.ai/"), "invalid_client_id", /must have a path/);
  assert.equal(fetched, 0);
});

Deno.test("resolve: an operator DNS host resolving to a non-public address is refused", async () => {
  let fetched = 0;
  const fakeFetch = (input: RequestInfo | URL) => {
    fetched++;
    return Promise.resolve(json(doc(String(input))));
  };
  const make = (addresses: string[] | Error) =>
    new CimdResolver({
      fetch: fakeFetch,
      now: () => 0,
      allowedHosts: ["meta.example.com", "meta.example.com:8443"],
      resolveDns: (host) => {
        assert.equal(host, "meta.example.com");
        return addresses instanceof Error ? Promise.reject(addresses) : Promise.resolve(addresses);
      },
    });
  const id = "https://meta.example.com/client.json";
  for (
    const bad of [
      ["10.0.0.5"],
      ["172.16.3.4"],
      ["192.168.1.1"],
      ["127.0.0.1"],
      ["169.254.169.254"],
      ["100.64.0.1"],
      ["224.0.0.1"],
      ["0.0.0.0"],
      ["255.255.255.255"],
      ["::1"],
      ["::"],
      ["fe80::1"],
      ["fc00::1"],
      ["fd12:3456::1"],
      ["ff02::1"],
      ["::ffff:10.0.0.1"],
      ["::ffff:93.184.215.14"],
      ["93.184.215.14", "10.0.0.1"], // any bad address is enough
      ["2606:4700::1111", "fd00::1"],
      ["not-an-ip"],
    ]
  ) await rejects(make(bad).resolve(id), "unsafe_address", /non-public/);
  await rejects(make([]).resolve(id), "fetch_failed", /could not be resolved/);
  await rejects(make(new Error("NXDOMAIN")).resolve(id), "fetch_failed", /could not be resolved/);
  assert.equal(fetched, 0);
  // Public addresses pass, on the default port and on a listed one.
  const good = make(["93.184.215.14", "2606:4700::1111"]);
  assert.equal((await good.resolve(id)).client_id, id);
  await good.resolve("https://meta.example.com:8443/client.json");
  assert.equal(fetched, 2);
  // The default hosts are trusted without a lookup (noDns would throw).
  const vendor = new CimdResolver({ fetch: fakeFetch, now: () => 0, resolveDns: noDns });
  await vendor.resolve("https://claude.ai/oauth/claude-code-client-metadata");
});

Deno.test("config: oauth.clientMetadataHosts entries are validated", () => {
  const make = (allowedHosts: unknown) => () =>
    new CimdResolver({
      fetch,
      now: () => 0,
      allowedHosts: allowedHosts as string[],
    });
  for (
    const [hosts, path] of [
      [["ok.example", "https://meta.example.com"], "oauth.clientMetadataHosts[1]"],
      [["meta.example.com/x"], "oauth.clientMetadataHosts[0]"],
      [["meta.example.com:99999"], "oauth.clientMetadataHosts[0]"],
      [["user@meta.example.com"], "oauth.clientMetadataHosts[0]"],
      [[""], "oauth.clientMetadataHosts[0]"],
      [[" meta.example.com"], "oauth.clientMetadataHosts[0]"],
      [["127.1"], "oauth.clientMetadataHosts[0]"],
      [[7], "oauth.clientMetadataHosts[0]"],
      ["meta.example.com", "oauth.clientMetadataHosts"],
    ] as const
  ) {
    assert.throws(make(hosts), (e) => {
      assert.ok(e instanceof OAuthConfigError);
      assert.equal(e.path, path);
      return true;
    });
  }
  make(["Meta.Example.com", "meta.example.com:443", "127.0.0.1:8080", "[::1]:9"])();
});

Deno.test("cache: max-age is honoured, clamped to [60 s, 24 h], counted by server hits", async () => {
  for (
    const [cacheControl, ttlSeconds] of [
      ["max-age=10", 60],
      ["max-age=300", 300],
      ["public, max-age=3600", 3600],
      ["max-age=999999", 86400],
      ["no-store", 60],
      ["no-cache, max-age=3600", 60],
      ["", 60],
    ] as const
  ) {
    await withServer(serveDoc(doc, { "cache-control": cacheControl }), async (local) => {
      let clock = 1_000_000;
      const cimd = resolver(local, { now: () => clock });
      const id = `${local.base}/c.json`;
      const first = await cimd.resolve(id);
      assert.equal(local.hits(), 1);
      clock += ttlSeconds * 1000 - 1;
      assert.equal(await cimd.resolve(id), first, `${cacheControl}: still cached`);
      assert.equal(local.hits(), 1, cacheControl);
      clock += 2;
      await cimd.resolve(id);
      assert.equal(local.hits(), 2, `${cacheControl}: refetched after ${ttlSeconds} s`);
    });
  }
});

Deno.test("cache: Age counts against max-age", () => {
  const h = (cc: string, age?: string) =>
    new Headers({ "cache-control": cc, ...(age ? { age } : {}) });
  assert.equal(cacheLifetimeMs(h("max-age=600", "100")), 500_000);
  assert.equal(cacheLifetimeMs(h("max-age=600", "590")), 60_000);
  assert.equal(cacheLifetimeMs(h("max-age=600", "junk")), 600_000);
  assert.equal(cacheLifetimeMs(h('max-age="120"')), 120_000);
  assert.equal(cacheLifetimeMs(h("max-age=abc")), 60_000);
  assert.equal(cacheLifetimeMs(new Headers()), 60_000);
});

Deno.test("cache: failures are not cached; concurrent lookups share one retrieval", async () => {
  let fail = true;
  await withServer((_r, url) => fail ? json({}, {}, 500) : json(doc(url.href)), async (local) => {
    const cimd = resolver(local);
    const id = `${local.base}/c.json`;
    await rejects(cimd.resolve(id), "fetch_failed", /HTTP 500/);
    fail = false;
    const [a, b, c] = await Promise.all([cimd.resolve(id), cimd.resolve(id), cimd.resolve(id)]);
    assert.equal(a, b);
    assert.equal(b, c);
    assert.equal(local.hits(), 2);
  });
});

Deno.test("cache: bounded, the oldest entry is evicted", async () => {
  await withServer(serveDoc(), async (local) => {
    const cimd = resolver(local, { maxEntries: 2 });
    const id = (n: string) => `${local.base}/${n}.json`;
    await cimd.resolve(id("a"));
    await cimd.resolve(id("b"));
    await cimd.resolve(id("c")); // evicts a
    await cimd.resolve(id("b"));
    await cimd.resolve(id("c"));
    assert.equal(local.hits(), 3);
    await cimd.resolve(id("a"));
    assert.deepEqual(local.paths, ["/a.json", "/b.json", "/c.json", "/a.json"]);
  });
});

Deno.test("cache: shared by instances: a document one retrieved is not retrieved again", async () => {
  await withServer(serveDoc(doc, { "cache-control": "max-age=300" }), async (local) => {
    let clock = 1_000_000;
    const saved = new Map<string, { doc: Record<string, unknown>; expiresAt: number }>();
    const shared: SharedCimdCache = {
      get: (id) => Promise.resolve(saved.get(id) ?? null),
      put: (id, d, expiresAt) => Promise.resolve(void saved.set(id, { doc: d, expiresAt })),
    };
    const [a, b] = [0, 1].map(() => resolver(local, { now: () => clock, shared }));
    const id = `${local.base}/c.json`;
    const first = await a.resolve(id);
    assert.equal(saved.get(id)?.expiresAt, 1_300_000);
    assert.deepEqual(await b.resolve(id), first);
    assert.equal(local.hits(), 1, "the second instance used the shared copy");
    // Past its lifetime the shared copy is not used; a document invalid here is retrieved.
    clock += 300_000;
    await b.resolve(id);
    assert.equal(local.hits(), 2);
    saved.set(`${local.base}/d.json`, { doc: { client_id: "other" }, expiresAt: clock + 60_000 });
    await a.resolve(`${local.base}/d.json`);
    assert.equal(local.hits(), 3);
    // A shared cache that fails costs a retrieval, never the sign-in.
    const broken = resolver(local, {
      shared: { get: () => Promise.reject(new Error("down")), put: () => Promise.reject(0) },
    });
    assert.deepEqual(await broken.resolve(`${local.base}/e.json`), doc(`${local.base}/e.json`));
  });
});

Deno.test("redirectAllowed: Claude-Code-style portless loopback entries match any port", async () => {
  const claudeCode = (id: string) =>
    doc(id, {
      client_name: "Claude Code",
      redirect_uris: ["http://localhost/callback", "http://127.0.0.1/callback"],
    });
  await withServer(serveDoc(claudeCode), async (local) => {
    const cimd = resolver(local);
    const meta: ClientMetadata = await cimd.resolve(`${local.base}/claude-code-client-metadata`);
    for (
      const ok of [
        "http://localhost:53682/callback",
        "http://localhost:1/callback",
        "http://localhost/callback",
        "http://127.0.0.1:40000/callback",
      ]
    ) {
      assert.equal(redirectAllowed(meta, ok), true, ok);
      assert.equal(cimd.redirectAllowed(meta, ok), true, ok);
    }
    for (
      const bad of [
        "http://localhost:53682/callback/",
        "http://localhost:53682/other",
        "http://localhost:53682/callback?x=1",
        "http://localhost:53682/callback#x",
        "http://[::1]:53682/callback",
        "http://127.0.0.2:53682/callback",
        "https://localhost:53682/callback",
        "http://evil.example:53682/callback",
        "http://LOCALHOST:53682/callback",
      ]
    ) assert.equal(redirectAllowed(meta, bad), false, bad);
  });
  // Non-loopback entries stay exact.
  const meta = validateClientMetadata("https://claude.ai/oauth/mcp-oauth-client-metadata", {
    client_id: "https://claude.ai/oauth/mcp-oauth-client-metadata",
    client_name: "Claude",
    redirect_uris: ["https://claude.ai/api/mcp/auth_callback"],
  });
  assert.equal(redirectAllowed(meta, "https://claude.ai/api/mcp/auth_callback"), true);
  assert.equal(redirectAllowed(meta, "https://claude.ai/api/mcp/auth_callback/x"), false);
  assert.equal(redirectAllowed(meta, "https://claude.ai:444/api/mcp/auth_callback"), false);
});
