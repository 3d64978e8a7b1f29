/**
 * Behind a tunnel: every request arrives from the tunnel daemon on this machine, so on the public
 * listener "this machine" and "the Internet" look alike. The owner's endpoints (/metrics,
 * /healthz details) are therefore only on the admin listener, whatever the forwarded headers say
 * or lack; and the proxy warns at start when a login config is reached through a public URL but
 * believes no forwarded header (every client would share the tunnel's address).
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess } from "../../helpers/proxy.ts";
import { fakeGitHub, LOGIN_ENV, loginConfig } from "../../helpers/oauth.ts";
import { raw, withProxy } from "./edge-helpers.ts";
import { step } from "../../helpers/login.ts";

const TUNNEL_URL = "https://pi.example.ts.net";
const NO_PRESET = /warn .*publicUrl https:\/\/pi\.example\.ts\.net is reached through a tunnel/;

/** GET `path` with the tunnel's Host and `headers`, as a tunnel daemon forwards it. */
function viaTunnel(proxy: ProxyProcess, path: string, headers: string[]) {
  return raw(proxy.origin, [
    `GET ${path} HTTP/1.1`,
    "Host: pi.example.ts.net",
    ...headers,
    "Connection: close",
  ]);
}

/** Every way the public listener could mistake an Internet caller for the owner. */
const TUNNEL_REQUESTS: [string, string[]][] = [
  ["a client behind the tunnel", ["X-Forwarded-For: 203.0.113.9"]],
  ["no forwarded header", []],
  ["a malformed header", ["X-Forwarded-For: junk", "CF-Connecting-IP: junk"]],
  ["two values", ["X-Forwarded-For: 127.0.0.1, 203.0.113.9"]],
  ["a forged loopback header", ["X-Forwarded-For: 127.0.0.1", "CF-Connecting-IP: ::1"]],
];

async function assertOwnerOnlyOnAdmin(proxy: ProxyProcess, setup: string): Promise<void> {
  for (const [what, headers] of TUNNEL_REQUESTS) {
    const metrics = await viaTunnel(proxy, "/metrics", headers);
    assert.equal(metrics.status, 404, `${setup}, ${what}: /metrics`);
    assert.deepEqual(JSON.parse(metrics.body), { error: "not_found" });
    const health = await viaTunnel(proxy, "/healthz", headers);
    assert.equal(health.status, 200, `${setup}, ${what}: /healthz`);
    assert.deepEqual(JSON.parse(health.body), { status: "ok" }, `${setup}, ${what}: /healthz`);
  }
  // A plain local request to the public listener gets no more.
  const local = await fetch(`${proxy.origin}/metrics`);
  assert.equal(local.status, 404, `${setup}: local /metrics on the public listener`);
  await local.body?.cancel();
  // The admin listener has it all, to this machine only: the tunnel's Host is refused there.
  const metrics = await fetch(`${proxy.admin}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /^mop_children\{server="fx",state="running"\} 1$/m);
  const health = await (await fetch(`${proxy.admin}/healthz`)).json();
  assert.equal(health.servers.fx.state, "running");
  assert.ok(health.network);
  const rebound = await raw(proxy.admin, [
    "GET /metrics HTTP/1.1",
    "Host: pi.example.ts.net",
    "Connection: close",
  ]);
  assert.equal(rebound.status, 421, `${setup}: admin listener with a foreign Host`);
}

// One start per setting; the two starts that show the warning or its absence check that too.
Deno.test("tunnel (one proxy per setting)", async (t) => {
  const gh = await fakeGitHub();
  try {
    const base = {
      mcpServers: { fx: fixtureServer({ mode: "shared" }) },
      ...loginConfig(gh),
      publicUrl: TUNNEL_URL,
    };
    // A shared child starts at once (warm), so /metrics has a running child to show.
    const settings: [string, Record<string, unknown>][] = [
      ["no trustedProxies (what init writes)", {}],
      ["the tailscale preset", { network: { trustedProxies: "tailscale" } }],
      ["the cloudflare preset", { network: { trustedProxies: "cloudflare" } }],
      ["a CIDR list naming loopback", { network: { trustedProxies: ["127.0.0.1/32"] } }],
    ];
    const warned: Record<string, (proxy: ProxyProcess) => Promise<void>> = {
      [settings[0][0]]: async (proxy) => {
        const line = await proxy.waitForLog(NO_PRESET);
        assert.match(line, /network\.trustedProxies is not set/);
        assert.match(line, /"tailscale", "ngrok", "cloudflare"/);
        await proxy.waitForLog(/ listening /);
        assert.equal(proxy.logs().split("\n").filter((l) => NO_PRESET.test(l)).length, 1);
      },
      [settings[1][0]]: async (proxy) => {
        await proxy.waitForLog(/ listening /);
        assert.doesNotMatch(proxy.logs(), /trustedProxies is not set/);
      },
    };
    for (const [setup, extra] of settings) {
      await withProxy({ ...base, ...extra }, { env: LOGIN_ENV }, async (proxy) => {
        const warning = warned[setup];
        if (warning) {
          await step(
            t,
            proxy,
            `tunnel: a login config with a public URL and no trustedProxies warns once at start, naming the presets; with a preset it does not (${setup})`,
            () => warning(proxy),
          );
        }
        await step(
          t,
          proxy,
          `tunnel: /metrics and /healthz details are never on the public listener, with or without a preset, whatever the forwarded header; the admin listener has them (${setup})`,
          async () => {
            await proxy.waitForLog(/child ready child="fx#/);
            await assertOwnerOnlyOnAdmin(proxy, setup);
          },
        );
      });
    }
  } finally {
    await gh.close();
  }
});
