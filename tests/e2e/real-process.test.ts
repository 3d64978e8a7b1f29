/**
 * Most end-to-end tests run the proxy inside the test process (tests/helpers/proxy.ts), with
 * every permission. This one starts it as `main.ts serve` with exactly the flags `main.ts
 * permissions` derives, and uses once each part that needs a permission or is loaded on first
 * use: sign-in through GitHub (the KV store in `dataDir`, GitHub's API), a downloaded range
 * list, an access log file, children of each mode, a 2025 session, the legacy SSE transport, a
 * 2026-07-28 request and the merged endpoint (both loaded on first use), a config reload.
 */
import assert from "node:assert/strict";
import { fixtureServer, startProxy } from "../helpers/proxy.ts";
import { ALICE, BOB, fakeGitHub, LOGIN_ENV, loginConfig } from "../helpers/oauth.ts";
import { reloadConfig, signInForTokens } from "../helpers/oauth-flows.ts";
import { connect, sseUrl, text } from "../helpers/client.ts";
import { modernRequest } from "../helpers/rpc.ts";
import { startFakeRanges } from "../fixtures/fake-ranges.ts";

Deno.test("a real process under the derived flags uses every part once", async (t) => {
  const gh = await fakeGitHub();
  const ranges = startFakeRanges({ "/loopback.json": ["127.0.0.0/8"] });
  const logs = await Deno.makeTempDir({ prefix: "mop-real-" });
  const proxy = await startProxy({
    ...loginConfig(gh),
    mcpServers: {
      shared: fixtureServer({ mode: "shared" }, ["--name=shared"]),
      user: fixtureServer({}, ["--name=user"]),
      session: fixtureServer({ mode: "per-session" }, ["--name=session"]),
    },
    merged: { enabled: true },
    accessLog: `${logs}/access.log`,
    network: { allow: [], rangeSources: [ranges.url("/loopback.json")] },
  }, { env: LOGIN_ENV, process: true });
  try {
    assert.ok(
      proxy.flags.some((f) => f.startsWith("--allow-net=") && f.includes(ranges.origin.slice(7))),
    );
    const merged = `${proxy.origin}/mcp`;
    const tokenFor = async (resource: string) =>
      (await signInForTokens(proxy, { resource })).tokens.access_token;

    await t.step("a 2025 session on each mode's server, signed in through GitHub", async () => {
      for (const name of ["shared", "user", "session"]) {
        const bearer = { authorization: `Bearer ${await tokenFor(proxy.url(name))}` };
        const c = await connect(proxy.url(name), { headers: bearer });
        assert.equal(c.client.getServerVersion()?.name, name);
        const said = await c.client.callTool({ name: "echo", arguments: { text: name } });
        assert.equal(text(said), name);
        await c.close();
      }
    });

    await t.step("the legacy SSE transport", async () => {
      const url = sseUrl(proxy.url("user"));
      const bearer = { authorization: `Bearer ${await tokenFor(url)}` };
      const c = await connect(url, { transport: "sse", headers: bearer });
      assert.equal(
        text(await c.client.callTool({ name: "echo", arguments: { text: "sse" } })),
        "sse",
      );
      await c.close();
    });

    await t.step("a 2026-07-28 request and the merged endpoint (loaded on first use)", async () => {
      const bearer = { authorization: `Bearer ${await tokenFor(proxy.url("shared"))}` };
      const modern = await modernRequest(proxy.url("shared"), 1, "tools/call", {
        name: "echo",
        arguments: { text: "modern" },
      }, bearer);
      assert.equal(text(modern.result), "modern", JSON.stringify(modern));
      const all = { authorization: `Bearer ${await tokenFor(merged)}` };
      const listed = await modernRequest(merged, 2, "tools/list", {}, all);
      const names = (listed.result as { tools: { name: string }[] }).tools.map((tool) => tool.name);
      for (const server of ["shared", "user", "session"]) {
        assert.ok(names.some((n) => n.startsWith(server)), names.join());
      }
    });

    await t.step(
      "the range list was downloaded, the access log file written, a reload applied",
      async () => {
        assert.ok(ranges.requests.some((r) => r === "GET /loopback.json"), ranges.requests.join());
        const access = await Deno.readTextFile(`${logs}/access.log`);
        assert.match(access, /route=mcp status=200/);
        await reloadConfig(proxy, (c) => c.allow = { users: [ALICE.id, BOB.id] });
        await proxy.waitForLog(/allow-list reloaded/);
      },
    );
  } catch (error) {
    console.log(`--- proxy stdout ---\n${proxy.stdout()}\n--- proxy stderr ---\n${proxy.logs()}`);
    throw error;
  } finally {
    const status = await proxy.stop();
    await Promise.all([gh.close(), ranges.close()]);
    await Deno.remove(logs, { recursive: true });
    assert.equal(status.code, 0);
  }
  // Nothing was refused for want of a permission.
  assert.doesNotMatch(proxy.logs(), /NotCapable|Requires .* access|permission/i);
});
