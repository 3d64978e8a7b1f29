/**
 * Behind a tunnel: every request arrives from the tunnel daemon on this machine. The proxy warns
 * at start when a login config is reached through a public URL but believes no forwarded header
 * (every client would share the tunnel's address), and names the presets.
 */
import assert from "node:assert/strict";
import { fixtureServer } from "../../helpers/proxy.ts";
import { fakeGitHub, LOGIN_ENV, loginConfig } from "../../helpers/oauth.ts";
import { withProxy } from "./edge-helpers.ts";

const TUNNEL_URL = "https://pi.example.ts.net";
const NO_PRESET = /warn .*publicUrl https:\/\/pi\.example\.ts\.net is reached through a tunnel/;

Deno.test("tunnel: a login config with a public URL and no trustedProxies warns once at start, naming the presets; with a preset it does not", async () => {
  const gh = await fakeGitHub();
  try {
    const base = { mcpServers: { fx: fixtureServer() }, ...loginConfig(gh), publicUrl: TUNNEL_URL };
    await withProxy(base, { env: LOGIN_ENV }, async (proxy) => {
      const line = await proxy.waitForLog(NO_PRESET);
      assert.match(line, /network\.trustedProxies is not set/);
      assert.match(line, /"tailscale", "ngrok", "cloudflare"/);
      await proxy.waitForLog(/ listening /);
      assert.equal(proxy.logs().split("\n").filter((l) => NO_PRESET.test(l)).length, 1);
    });
    const tailscale = { ...base, network: { trustedProxies: "tailscale" } };
    await withProxy(tailscale, { env: LOGIN_ENV }, async (proxy) => {
      await proxy.waitForLog(/ listening /);
      assert.doesNotMatch(proxy.logs(), /trustedProxies is not set/);
    });
  } finally {
    await gh.close();
  }
});
