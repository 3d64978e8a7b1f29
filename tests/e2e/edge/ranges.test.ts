/**
 * Downloaded range documents (OpenAI's shape:
 * https://developers.openai.com/api/docs/guides/ip-addresses), end to end with a fake document
 * server on loopback (`network.rangeSources`, http allowed for loopback hosts): addresses in a
 * document are admitted; a failed download (500, redirect, oversized, malformed) keeps the last
 * good list, also across a restart on the same data dir; a list that never loaded fails closed and
 * says so; /healthz shows each list's count and age; SIGHUP swaps the lists without dropping a
 * session.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../../helpers/proxy.ts";
import { connect, text } from "../../helpers/client.ts";
import { countLogLines, reloadConfig, waitForNewLog } from "../../helpers/oauth-flows.ts";
import { fakeGitHub, LOGIN_ENV, loginConfig } from "../../helpers/oauth.ts";
import { RELAXED_LIMITS } from "../../helpers/oauth-raw.ts";
import { type RangeMode, startFakeRanges } from "../../fixtures/fake-ranges.ts";
import {
  accessLines,
  assertBlocked,
  echo,
  from,
  LISTED,
  MCP_HEADERS,
  nextAccess,
  syncAccess,
  TRUST_LOOPBACK,
  UNLISTED,
  withProxy,
} from "./edge-helpers.ts";
import { step } from "../../helpers/login.ts";

const DOC_A = ["198.18.0.0/15", "2001:db8:abc::/48"];
const IN_A = "198.18.7.9";
const IN_A_V6 = "2001:db8:abc:1::9";
const DOC_B = ["100.64.0.0/10", "192.0.2.0/25", "2001:db8:b::/48"];
const IN_B = "100.64.1.1";

/** GET /mcp/fx without a session (no-auth config): 400 when let in, 403 when blocked. */
async function admitted(proxy: ProxyProcess, ip: string, seen = ip): Promise<boolean> {
  await syncAccess(proxy);
  const count = accessLines(proxy).length;
  const res = await fetch(proxy.url("fx"), { headers: { ...MCP_HEADERS, ...from(ip) } });
  const body = await res.text();
  assert.ok(res.status === 400 || res.status === 403, `${ip}: ${res.status} ${body}`);
  if (res.status === 403) assert.deepEqual(JSON.parse(body), { error: "ip_not_allowed", ip: seen });
  assert.equal((await nextAccess(proxy, count)).ip, seen);
  return res.status === 400;
}

interface ListHealth {
  url: string;
  count: number;
  ageSeconds: number | null;
  lastError: string | null;
}

async function health(proxy: ProxyProcess): Promise<{ staticRanges: number; lists: ListHealth[] }> {
  const res = await fetch(`${proxy.admin}/healthz`);
  assert.equal(res.status, 200);
  return (await res.json()).network;
}

function config(sources: string[], allow: string[] = []) {
  return {
    mcpServers: { fx: fixtureServer() },
    network: { allow, rangeSources: sources, ...TRUST_LOOPBACK },
  };
}

// The downloaded lists and the SIGHUP swaps share one proxy; each SIGHUP step first reloads
// the network section it starts from.
Deno.test("ranges: downloaded lists and SIGHUP swaps (one proxy)", async (t) => {
  const fake = startFakeRanges({ "/a.json": DOC_A, "/b.json": DOC_B, "/slow.json": DOC_B });
  try {
    await withProxy(
      config([fake.url("/a.json"), fake.url("/b.json")], ["anthropic"]),
      {},
      async (proxy) => {
        /** Rewrites the network section's allow and rangeSources and waits for the reload. */
        const reload = async (allow: string[], sources: string[]) => {
          const before = countLogLines(proxy, /network section reloaded/);
          await reloadConfig(proxy, (c) => {
            const network = c.network as Record<string, unknown>;
            network.allow = allow;
            network.rangeSources = sources;
          });
          await waitForNewLog(proxy, /network section reloaded/, before);
        };
        await step(
          t,
          proxy,
          "ranges: addresses in the downloaded documents are admitted; /healthz shows each list's count and age; anthropic is built in",
          async () => {
            assert.equal(await admitted(proxy, IN_A), true);
            assert.equal(await admitted(proxy, IN_A_V6), true);
            assert.equal(await admitted(proxy, `::ffff:${IN_A}`, IN_A), true);
            assert.equal(await admitted(proxy, IN_B), true);
            assert.equal(await admitted(proxy, "192.0.2.200"), false, "outside 192.0.2.0/25");
            assert.equal(await admitted(proxy, UNLISTED), false);
            assert.equal(await admitted(proxy, "2001:db8:abd::1"), false);
            // anthropic: 160.79.104.0/21 and 153.61.208.0/20, built in (no download).
            assert.equal(await admitted(proxy, "160.79.104.1"), true);
            assert.equal(await admitted(proxy, "160.79.111.254"), true);
            assert.equal(await admitted(proxy, "160.79.112.1"), false);
            assert.equal(await admitted(proxy, "153.61.208.1"), true);
            assert.equal(await admitted(proxy, "153.61.224.1"), false, "outside 153.61.208.0/20");

            const net = await health(proxy);
            assert.equal(net.staticRanges, 2);
            assert.deepEqual(
              net.lists.map((l) => [l.url, l.count, l.lastError]),
              [[fake.url("/a.json"), 2, null], [fake.url("/b.json"), 3, null]],
            );
            for (const l of net.lists) {
              assert.equal(typeof l.ageSeconds, "number");
              assert.ok(l.ageSeconds! >= 0 && l.ageSeconds! < 30, `age ${l.ageSeconds}`);
            }
            await proxy.waitForLog(
              /range list http:\/\/127\.0\.0\.1:\d+\/a\.json: loaded 2 ranges/,
            );
            // The public listener shows them to nobody (the admin listener is this machine's).
            const remote = await fetch(`${proxy.origin}/healthz`, { headers: from(IN_A) });
            assert.deepEqual(await remote.json(), { status: "ok" });
          },
        );
        await step(
          t,
          proxy,
          "ranges: SIGHUP swaps the allow-list and range lists without dropping a live MCP session",
          async () => {
            // The state this step starts from: address range 203.0.113.0/24 and document A.
            await reload(["203.0.113.0/24"], [fake.url("/a.json")]);
            let client: Awaited<ReturnType<typeof connect>> | undefined;
            try {
              client = await connect(proxy.url("fx"), { headers: from(LISTED) });
              const session = client.sessionId();
              assert.ok(session);
              const call = async (marker: string) =>
                text(await client!.client.callTool({ name: "echo", arguments: { text: marker } }));
              assert.equal(await call("before"), "before");
              assert.equal(await admitted(proxy, IN_A), true);
              assert.equal(await admitted(proxy, IN_B), false);
              assert.equal(await admitted(proxy, UNLISTED), false);

              // Add an address range and swap document A for B.
              await reload(["203.0.113.0/24", "198.51.100.0/24"], [fake.url("/b.json")]);
              assert.equal(client.sessionId(), session);
              assert.equal(await call("after"), "after");
              // The GET stream of the session survived too: a list_changed notification arrives on it.
              const changed = client.listChanged;
              await client.client.callTool({ name: "toggle", arguments: {} });
              const deadline = Date.now() + 5000;
              while (client.listChanged === changed && Date.now() < deadline) {
                await new Promise((r) => setTimeout(r, 20));
              }
              assert.equal(client.listChanged, changed + 1, "the session's stream still delivers");
              assert.equal(await admitted(proxy, UNLISTED), true);
              assert.equal(await admitted(proxy, IN_B), true);
              assert.equal(await admitted(proxy, IN_A), false, "document A is no longer used");
              assert.deepEqual((await health(proxy)).lists.map((l) => [l.url, l.count]), [[
                fake.url("/b.json"),
                3,
              ]]);

              // Remove the session's own range: its requests are refused at once…
              await reload(["198.51.100.0/24"], []);
              const refused = await fetch(proxy.url("fx"), {
                method: "POST",
                headers: {
                  ...MCP_HEADERS,
                  ...from(LISTED),
                  "mcp-session-id": session,
                  "mcp-protocol-version": "2025-06-18",
                },
                body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "ping" }),
              });
              await assertBlocked(refused, LISTED, "the session's IP was removed");
              // …but the session was not dropped: put the range back and it works again.
              await reload(["203.0.113.0/24"], []);
              const back = await echo(proxy.url("fx"), session, "still here", from(LISTED));
              assert.equal(back.status, 200, back.body);
              assert.equal(back.text, "still here");
              assert.equal(await call("sdk again"), "sdk again");

              // A reload with a mistake is refused and the running rules are kept.
              await reloadConfig(proxy, (c) => {
                (c.network as Record<string, unknown>).allow = ["203.0.113.0/33"];
              });
              await proxy.waitForLog(
                /config reload failed, keeping the running config problems=.*network\.allow\[0\]/,
              );
              assert.equal(await admitted(proxy, LISTED), true);
              assert.equal(await admitted(proxy, UNLISTED), false);
              assert.equal(await call("kept"), "kept");
            } finally {
              await client?.close();
            }
          },
        );
        await step(
          t,
          proxy,
          "ranges: SIGHUP also swaps trustedProxies and protectMetadata; of two quick reloads the last one wins even when the first one's download is slow",
          async () => {
            const reloaded = () => countLogLines(proxy, /network section reloaded/);
            const reload = async (network: Record<string, unknown>) => {
              const before = reloaded();
              await reloadConfig(proxy, (c) => void (c.network = network));
              await waitForNewLog(proxy, /network section reloaded/, before);
            };
            // The state this step starts from: address range 203.0.113.0/24, no documents.
            await reload({ allow: ["203.0.113.0/24"], ...TRUST_LOOPBACK });
            const metadata = async (headers: Record<string, string>) => {
              const res = await fetch(
                `${proxy.origin}/.well-known/oauth-protected-resource/mcp/fx`,
                {
                  headers,
                },
              );
              await res.body?.cancel();
              return res.status;
            };
            assert.equal(await admitted(proxy, LISTED), true);
            assert.notEqual(await metadata(from(UNLISTED)), 403, "metadata open by default");

            // The client-IP rule and protectMetadata are part of the reloaded section.
            await reload({
              allow: ["203.0.113.0/24"],
              trustedProxies: "cloudflare",
              protectMetadata: true,
            });
            const xff = await fetch(proxy.url("fx"), {
              headers: { ...MCP_HEADERS, ...from(LISTED) },
            });
            await assertBlocked(xff, "127.0.0.1", "XFF is no longer believed (cloudflare preset)");
            const cf = await fetch(proxy.url("fx"), {
              headers: { ...MCP_HEADERS, "cf-connecting-ip": LISTED },
            });
            await cf.body?.cancel();
            assert.equal(cf.status, 400, "CF-Connecting-IP is believed now");
            assert.equal(
              await metadata({ "cf-connecting-ip": UNLISTED }),
              403,
              "metadata protected now",
            );

            // Two reloads in a row; the first one waits on a slow download.
            fake.setDelay("/slow.json", 1500);
            const before = reloaded();
            const requested = fake.requests.length;
            await reloadConfig(proxy, (c) =>
              void (c.network = {
                allow: ["198.51.100.0/24"],
                rangeSources: [fake.url("/slow.json")],
                ...TRUST_LOOPBACK,
              }));
            const deadline = Date.now() + 5000;
            while (fake.requests.length === requested && Date.now() < deadline) {
              await new Promise((r) => setTimeout(r, 10));
            }
            assert.ok(fake.requests.length > requested, "the first reload is downloading");
            await reloadConfig(
              proxy,
              (c) => void (c.network = { allow: ["192.0.2.0/24"], ...TRUST_LOOPBACK }),
            );
            await waitForNewLog(proxy, /network section reloaded/, before + 1, 10_000);
            // The file now says 192.0.2.0/24 only: that is what must be in force.
            assert.equal(await admitted(proxy, "192.0.2.9"), true);
            assert.equal(
              await admitted(proxy, UNLISTED),
              false,
              "the superseded reload must not win",
            );
            assert.equal(
              await admitted(proxy, IN_B),
              false,
              "the superseded range list must not win",
            );
            assert.deepEqual((await health(proxy)).lists, []);
          },
        );
      },
    );
  } finally {
    await fake.close();
  }
});

const FAILURES: [RangeMode, RegExp][] = [
  ["500", /HTTP 500, expected 200/],
  ["redirect", /redirect refused \(HTTP 302\)/],
  ["oversized", /body larger than 1048576 bytes/],
  ["oversized-chunked", /body larger than 1048576 bytes/],
  ["malformed", /not valid JSON/],
  ["bad-prefix", /prefixes\[2\]\.ipv4Prefix/],
];

/** One source per failure mode, each with its own two ranges (an IPv4 and an IPv6 one). */
const SOURCES = FAILURES.map(([mode, reason], i) => ({
  mode,
  reason,
  path: `/${mode}.json`,
  prefixes: [`198.18.${i}.0/24`, `2001:db8:abc:${i + 1}::/64`],
  v4: `198.18.${i}.9`,
  v6: `2001:db8:abc:${i + 1}::9`,
  /** The document it serves once it is back. */
  next: [`100.64.${i}.0/24`],
  nextV4: `100.64.${i}.1`,
}));

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

Deno.test("ranges: a failed download at start keeps the last good list across restarts (500, redirect, oversized, malformed)", async () => {
  const fake = startFakeRanges(Object.fromEntries(SOURCES.map((s) => [s.path, s.prefixes])));
  const dir = await Deno.makeTempDir({ prefix: "mop-ranges-" });
  const urls = SOURCES.map((s) => fake.url(s.path));
  try {
    // First run: good documents, persisted in the data dir.
    await withProxy(config(urls), { dir }, async (proxy) => {
      for (const s of SOURCES) assert.equal(await admitted(proxy, s.v4), true, s.mode);
      assert.equal(await admitted(proxy, UNLISTED), false);
    });
    // The next start: every source fails, each in its own way.
    for (const s of SOURCES) fake.setMode(s.path, s.mode);
    const requests = fake.requests.length;
    await withProxy(config(urls), { dir }, async (proxy) => {
      for (const [i, { mode, reason, v4, v6, path }] of SOURCES.entries()) {
        const url = urls[i];
        const line = await proxy.waitForLog(
          new RegExp(`${escapeRe(url)}: refresh failed`),
          15_000,
        );
        assert.match(line, / error /, `${mode}: logged as an error`);
        assert.ok(line.includes(url), `${mode}: names the URL: ${line}`);
        assert.match(line, reason, mode);
        assert.match(line, /keeping the last good list \(2 ranges/, mode);
        assert.match(
          proxy.logs(),
          new RegExp(`${escapeRe(url)}: loaded 2 cached ranges`),
          `${mode}: the persisted copy`,
        );
        assert.equal(await admitted(proxy, v4), true, `${mode}: still admitted`);
        assert.equal(await admitted(proxy, v6), true, `${mode}: still admitted (v6)`);
        const list = (await health(proxy)).lists.find((l) => l.url === url)!;
        assert.equal(list.count, 2, mode);
        assert.equal(typeof list.ageSeconds, "number", mode);
        assert.match(list.lastError ?? "", reason);
        assert.ok(
          fake.requests.slice(requests).includes(`GET ${path}`),
          `${mode}: the document was requested`,
        );
      }
      assert.equal(await admitted(proxy, UNLISTED), false, "never allow all");
    });
    assert.ok(
      !fake.requests.some((r) => r.includes("__redirect-target")),
      "a redirect is never followed",
    );
    // The failures never replaced the stored copies: back to "ok" they are simply refreshed.
    for (const s of SOURCES) {
      fake.setMode(s.path, "ok");
      fake.setPrefixes(s.path, s.next);
    }
    await withProxy(config(urls), { dir }, async (proxy) => {
      for (const s of SOURCES) {
        assert.equal(await admitted(proxy, s.nextV4), true, s.mode);
        assert.equal(
          await admitted(proxy, s.v4),
          false,
          `${s.mode}: the new document replaced the old one`,
        );
      }
    });
  } finally {
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ranges: no good list ever loaded → fail closed (403) and the log says so at every attempt; a later good download opens it", async () => {
  const fake = startFakeRanges({ "/ranges.json": DOC_A });
  fake.setMode("/ranges.json", "500");
  const url = fake.url("/ranges.json");
  try {
    await withProxy(config([url]), {}, async (proxy) => {
      const failClosed =
        /refresh failed: .*no good list was ever loaded, so it matches NOTHING \(fail closed\)/;
      const line = await proxy.waitForLog(failClosed, 15_000);
      assert.match(line, / error /);
      assert.ok(line.includes(url));
      // An empty allow-list with a configured source is not "allow everyone".
      assert.equal(await admitted(proxy, IN_A), false);
      assert.equal(await admitted(proxy, UNLISTED), false);
      assert.equal(await admitted(proxy, "127.0.0.1"), false);
      const [list] = (await health(proxy)).lists;
      assert.deepEqual(
        { count: list.count, age: list.ageSeconds, error: list.lastError },
        { count: 0, age: null, error: "HTTP 500, expected 200" },
      );
      // The next attempt (a reload starts one) fails the same way, and says so again.
      fake.setMode("/ranges.json", "malformed");
      const before = countLogLines(proxy, failClosed);
      proxy.reload();
      const again = await waitForNewLog(proxy, failClosed, before);
      assert.match(again, /not valid JSON/);
      assert.equal(await admitted(proxy, IN_A), false);
      // Once the source answers, the list opens.
      fake.setMode("/ranges.json", "ok");
      const loaded = countLogLines(proxy, /loaded 2 ranges/);
      proxy.reload();
      await waitForNewLog(proxy, /loaded 2 ranges/, loaded);
      await waitForNewLog(proxy, /network section reloaded/, 1);
      assert.equal(await admitted(proxy, IN_A), true);
    });
  } finally {
    await fake.close();
  }
});

Deno.test("ranges: a reload naming a range host the proxy was not started with fails closed and the log names the missing permission", async () => {
  const first = startFakeRanges({ "/a.json": DOC_A });
  const other = startFakeRanges({ "/b.json": DOC_B });
  const gh = await fakeGitHub();
  // With login the proxy listens on a fixed port, so its --allow-net names host:port pairs.
  const proxy = await startProxy(
    { ...config([first.url("/a.json")]), ...loginConfig(gh), limits: RELAXED_LIMITS },
    // Its own permissions are the point.
    { env: LOGIN_ENV, process: true },
  );
  try {
    assert.ok(
      proxy.flags.some((f) => f.startsWith("--allow-net=") && f.includes(first.origin.slice(7))),
    );
    const get = async (ip: string) => {
      const res = await fetch(proxy.url("fx"), { headers: { ...MCP_HEADERS, ...from(ip) } });
      await res.body?.cancel();
      return res.status;
    };
    assert.equal(await get(IN_A), 401);
    const before = countLogLines(proxy, /network section reloaded/);
    await reloadConfig(proxy, (c) => {
      (c.network as Record<string, unknown>).rangeSources = [other.url("/b.json")];
    });
    await waitForNewLog(proxy, /network section reloaded/, before);
    const line = proxy.logs().split("\n").find((l) =>
      l.includes(`${other.url("/b.json")}: refresh failed`)
    );
    assert.ok(line, "the failed download is logged");
    assert.match(line, /net access/i, "names the permission");
    assert.match(line, /fail closed/);
    assert.equal(other.requests.length, 0, "never fetched");
    assert.equal(await get(IN_B), 403);
    assert.equal(await get(IN_A), 403, "the old document is no longer configured");
  } catch (error) {
    console.log(proxy.logs());
    throw error;
  } finally {
    await proxy.stop();
    await gh.close();
    await first.close();
    await other.close();
  }
});
