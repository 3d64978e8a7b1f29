/**
 * The real client IP, end to end: forwarded headers are ignored unless the TCP peer is a trusted
 * proxy; a generic trusted list walks X-Forwarded-For right to left, skipping trusted hops and
 * never believing the leftmost; the tunnel presets read their own header (Funnel's single value,
 * ngrok's rightmost, Cloudflare's CF-Connecting-IP) and only from a loopback peer. The allow-list
 * decision and the access log's `ip`/`peer` show which address was used.
 */
import assert from "node:assert/strict";
import { fixtureServer } from "../../helpers/proxy.ts";
import {
  accessLines,
  ALLOW,
  assertBlocked,
  from,
  LISTED,
  MCP_HEADERS,
  nextAccess,
  syncAccess,
  UNLISTED,
  withProxy,
} from "./edge-helpers.ts";
import { step } from "../../helpers/login.ts";
import { countLogLines, reloadConfig, waitForNewLog } from "../../helpers/oauth-flows.ts";
import type { ProxyProcess } from "../../helpers/proxy.ts";

/**
 * GET /mcp/fx without a session (no-auth config): 400 when the allow-list lets the client in,
 * 403 naming the address otherwise. Returns the access-log line of the request.
 */
async function probe(
  proxy: ProxyProcess,
  headers: Record<string, string>,
  expected: { allowed: true; ip: string } | { allowed: false; ip: string },
  what: string,
) {
  await syncAccess(proxy);
  const count = accessLines(proxy).length;
  const res = await fetch(proxy.url("fx"), { headers: { ...MCP_HEADERS, ...headers } });
  if (expected.allowed) {
    const text = await res.text();
    assert.equal(res.status, 400, `${what}: expected the client to be let in, got ${text}`);
    assert.match(text, /Mcp-Session-Id/);
  } else {
    await assertBlocked(res, expected.ip, what);
  }
  const line = await nextAccess(proxy, count);
  assert.equal(line.ip, expected.ip, `${what}: access-log ip`);
  return line;
}

const noAuth = (network: Record<string, unknown>) => ({
  mcpServers: { fx: fixtureServer() },
  network: { allow: ALLOW, ...network },
});

/** Loads `network` (with the test allow-list) by SIGHUP and waits until it is in force. */
async function setNetwork(proxy: ProxyProcess, network: Record<string, unknown>): Promise<void> {
  const before = countLogLines(proxy, /network section reloaded/);
  await reloadConfig(proxy, (c) => void (c.network = { allow: ALLOW, ...network }));
  await waitForNewLog(proxy, /network section reloaded/, before);
}

// One proxy: the first step runs on the config it started with, each later one loads its
// trustedProxies setting by SIGHUP first. The IPv6 peer needs its own listen address.
Deno.test("client IP (one proxy)", async (t) => {
  await withProxy(noAuth({}), {}, async (proxy) => {
    await step(
      t,
      proxy,
      "client IP: without trustedProxies forwarded headers are ignored; the TCP peer 127.0.0.1 is the client",
      async () => {
        for (
          const [label, headers] of [
            ["X-Forwarded-For", from(LISTED)],
            ["CF-Connecting-IP", { "cf-connecting-ip": LISTED }],
            ["X-Real-IP", { "x-real-ip": LISTED }],
            ["Forwarded", { forwarded: `for=${LISTED}` }],
            ["all of them", {
              ...from(LISTED),
              "cf-connecting-ip": LISTED,
              "x-real-ip": LISTED,
              forwarded: `for=${LISTED}`,
            }],
          ] as const
        ) {
          const line = await probe(proxy, headers, { allowed: false, ip: "127.0.0.1" }, label);
          assert.equal(line.peer, undefined, "no peer field when it is the client");
        }
      },
    );
    await step(
      t,
      proxy,
      "client IP: a trusted peer's X-Forwarded-For is used, walked right to left past trusted hops, never the leftmost",
      async () => {
        await setNetwork(proxy, { trustedProxies: ["127.0.0.1/32", "10.0.0.0/8"] });
        const cases: [string, { allowed: boolean; ip: string }][] = [
          [LISTED, { allowed: true, ip: LISTED }],
          // The client's own (spoofed) entries are left of what the proxies appended.
          [`${UNLISTED}, ${LISTED}`, { allowed: true, ip: LISTED }],
          [`${LISTED}, ${UNLISTED}`, { allowed: false, ip: UNLISTED }],
          [`${LISTED}, ${LISTED}, ${UNLISTED}`, { allowed: false, ip: UNLISTED }],
          // Trusted hops are skipped, the first untrusted one is the client.
          [`${LISTED}, ${UNLISTED}, 10.1.2.3`, { allowed: false, ip: UNLISTED }],
          [`${UNLISTED}, ${LISTED}, 10.1.2.3, 10.9.9.9`, { allowed: true, ip: LISTED }],
          // Garbage ends the walk at the last good hop: never skipped to reach the leftmost.
          [`${LISTED}, not-an-ip`, { allowed: false, ip: "127.0.0.1" }],
          [`${LISTED}, not-an-ip, 10.1.2.3`, { allowed: false, ip: "10.1.2.3" }],
          [`${LISTED}:443`, { allowed: false, ip: "127.0.0.1" }],
          ["", { allowed: false, ip: "127.0.0.1" }],
        ];
        for (const [xff, expected] of cases) {
          const line = await probe(
            proxy,
            from(xff),
            expected as { allowed: true; ip: string },
            `X-Forwarded-For: ${xff}`,
          );
          assert.equal(line.peer, expected.ip === "127.0.0.1" ? undefined : "127.0.0.1", xff);
        }
        // Two header lines are one list (RFC 9110 §5.3): the rightmost entry still decides.
        const headers = new Headers(MCP_HEADERS);
        headers.append("x-forwarded-for", LISTED);
        headers.append("x-forwarded-for", UNLISTED);
        await assertBlocked(await fetch(proxy.url("fx"), { headers }), UNLISTED, "two XFF lines");
        // Another header is not believed instead.
        await probe(
          proxy,
          { "cf-connecting-ip": LISTED },
          { allowed: false, ip: "127.0.0.1" },
          "CF-Connecting-IP with a CIDR list",
        );
      },
    );
    await step(
      t,
      proxy,
      "client IP: clientIpHeader names the header a trusted CIDR list walks",
      async () => {
        await setNetwork(proxy, { trustedProxies: ["127.0.0.0/8"], clientIpHeader: "X-Real-IP" });
        await probe(proxy, { "x-real-ip": LISTED }, { allowed: true, ip: LISTED }, "x-real-ip");
        await probe(
          proxy,
          { "x-real-ip": `${LISTED}, ${UNLISTED}` },
          { allowed: false, ip: UNLISTED },
          "x-real-ip list",
        );
        await probe(proxy, from(LISTED), { allowed: false, ip: "127.0.0.1" }, "XFF not read");
      },
    );
    await step(
      t,
      proxy,
      "client IP: the tunnel presets (cloudflare: CF-Connecting-IP, ngrok: rightmost XFF, tailscale: the single XFF value)",
      async () => {
        const presets = ["cloudflare", "ngrok", "tailscale"] as const;
        const expectations: Record<
          typeof presets[number],
          [string, Record<string, string>, { allowed: boolean; ip: string }][]
        > = {
          cloudflare: [
            ["CF-Connecting-IP", { "cf-connecting-ip": LISTED }, { allowed: true, ip: LISTED }],
            // cloudflared appends to XFF: its left entries are the client's; never read it.
            ["CF-Connecting-IP wins over XFF", {
              "cf-connecting-ip": UNLISTED,
              ...from(LISTED),
            }, { allowed: false, ip: UNLISTED }],
            ["XFF alone is ignored", from(LISTED), { allowed: false, ip: "127.0.0.1" }],
            ["two CF-Connecting-IP values", {
              "cf-connecting-ip": `${LISTED}, ${UNLISTED}`,
            }, { allowed: false, ip: "127.0.0.1" }],
          ],
          ngrok: [
            ["rightmost", from(`${UNLISTED}, ${LISTED}`), { allowed: true, ip: LISTED }],
            ["spoofed leftmost", from(`${LISTED}, ${UNLISTED}`), { allowed: false, ip: UNLISTED }],
            ["CF-Connecting-IP is ignored", {
              "cf-connecting-ip": LISTED,
              ...from(UNLISTED),
            }, { allowed: false, ip: UNLISTED }],
            ["no header", {}, { allowed: false, ip: "127.0.0.1" }],
          ],
          tailscale: [
            ["single value", from(LISTED), { allowed: true, ip: LISTED }],
            // tailscaled overwrites XFF; a list means someone else wrote part of it.
            ["a list", from(`${UNLISTED}, ${LISTED}`), { allowed: false, ip: "127.0.0.1" }],
            ["a list, listed first", from(`${LISTED}, ${UNLISTED}`), {
              allowed: false,
              ip: "127.0.0.1",
            }],
            ["CF-Connecting-IP is ignored", { "cf-connecting-ip": LISTED }, {
              allowed: false,
              ip: "127.0.0.1",
            }],
          ],
        };
        for (const preset of presets) {
          await setNetwork(proxy, { trustedProxies: preset });
          for (const [label, headers, expected] of expectations[preset]) {
            const line = await probe(
              proxy,
              headers,
              expected as { allowed: true; ip: string },
              `${preset}: ${label}`,
            );
            assert.equal(
              line.peer,
              expected.ip === "127.0.0.1" ? undefined : "127.0.0.1",
              `${preset}: ${label}: peer`,
            );
          }
        }
      },
    );
  });
});

Deno.test("client IP: an IPv6 TCP peer ([::1]) is matched and named in canonical form", async () => {
  await withProxy(
    { ...noAuth({ trustedProxies: ["::1/128"] }), listen: "[::1]:0" },
    {},
    async (proxy) => {
      assert.match(proxy.origin, /^http:\/\/\[::1\]:\d+$/);
      await probe(proxy, {}, { allowed: false, ip: "::1" }, "no header");
      const line = await probe(proxy, from(LISTED), { allowed: true, ip: LISTED }, "XFF via ::1");
      assert.equal(line.peer, "::1");
    },
  );
});
