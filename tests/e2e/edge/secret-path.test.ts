/** A publicUrl with a secret path: the SDK client discovers and logs in through it; scanners get 404s. */
import assert from "node:assert/strict";
import { fixtureServer, startProxy } from "../../helpers/proxy.ts";
import { sseUrl, text } from "../../helpers/client.ts";
import {
  connectWithLogin,
  fakeGitHub,
  LOGIN_ENV,
  loginConfig,
  TestProvider,
} from "../../helpers/oauth.ts";

const SECRET = "/k3J9xQ7vLm2";

Deno.test("secret path: full login and tool call, and every root path a scanner tries is the same 404", async () => {
  const gh = await fakeGitHub();
  const proxy = await startProxy(
    {
      mcpServers: { fx: fixtureServer() },
      ...loginConfig(gh),
      network: { trustedProxies: ["127.0.0.1/32"] },
    },
    { env: LOGIN_ENV, publicPath: SECRET },
  );
  try {
    const url = proxy.url("fx");
    assert.equal(url, `${proxy.origin}${SECRET}/mcp/fx`);
    const provider = new TestProvider();
    const { client } = await connectWithLogin(url, provider);
    assert.equal(
      text(await client.callTool({ name: "echo", arguments: { text: "hidden" } })),
      "hidden",
    );
    await client.close();
    // The authorization server's URLs all live under the secret path.
    const authorize = provider.authorizationUrls[0];
    assert.equal(authorize.pathname, `${SECRET}/authorize`);
    const prm =
      await (await fetch(`${proxy.origin}/.well-known/oauth-protected-resource${SECRET}/mcp/fx`))
        .json();
    assert.equal(prm.resource, url);
    assert.deepEqual(prm.authorization_servers, [`${proxy.origin}${SECRET}`]);
    // The legacy SSE URL logs in through its own metadata under the secret path too.
    const sse = new TestProvider();
    const legacy = await connectWithLogin(sseUrl(url), sse, undefined, "sse");
    assert.equal(
      text(await legacy.client.callTool({ name: "echo", arguments: { text: "sse" } })),
      "sse",
    );
    await legacy.client.close();
    assert.equal(sse.authorizationUrls[0].searchParams.get("resource"), sseUrl(url));
    const ssePrm =
      await (await fetch(`${proxy.origin}/.well-known/oauth-protected-resource${SECRET}/sse/fx`))
        .json();
    assert.equal(ssePrm.resource, sseUrl(url));
    const as =
      await (await fetch(`${proxy.origin}/.well-known/oauth-authorization-server${SECRET}`)).json();
    assert.equal(as.issuer, `${proxy.origin}${SECRET}`);
    assert.equal(as.token_endpoint, `${proxy.origin}${SECRET}/token`);
    for (
      const alt of [
        `/.well-known/openid-configuration${SECRET}`,
        `${SECRET}/.well-known/openid-configuration`,
      ]
    ) {
      assert.deepEqual(await (await fetch(proxy.origin + alt)).json(), as, alt);
    }

    // A scanner from outside (a non-loopback client behind the trusted tunnel daemon).
    const outside = { "x-forwarded-for": "198.51.100.23" };
    const probes = [
      "/",
      "/mcp/fx",
      "/sse/fx",
      "/healthz",
      "/authorize",
      "/token",
      "/register",
      "/auth/callback",
      "/.well-known/oauth-authorization-server",
      "/.well-known/openid-configuration",
      "/.well-known/oauth-protected-resource",
      "/.well-known/oauth-protected-resource/mcp/fx",
      "/.well-known/oauth-protected-resource/sse/fx",
      `${SECRET}x/mcp/fx`,
      "/k3J9x/mcp/fx",
      "/.env",
      "/wp-login.php",
    ];
    const bodies = new Set<string>();
    for (const path of probes) {
      for (const method of ["GET", "POST"]) {
        const res = await fetch(proxy.origin + path, {
          method,
          headers: outside,
          body: method === "POST" ? "{}" : undefined,
        });
        assert.equal(res.status, 404, `${method} ${path}`);
        bodies.add(`${res.headers.get("content-type")} ${await res.text()}`);
      }
    }
    assert.equal(bodies.size, 1, [...bodies].join(" | "));
    // The health check answers under the secret path. At the root it is 404 even without a
    // forwarded header: the peer is the trusted tunnel daemon, never "this machine".
    assert.deepEqual(
      await (await fetch(`${proxy.origin}${SECRET}/healthz`, { headers: outside })).json(),
      { status: "ok" },
    );
    const root = await fetch(`${proxy.origin}/healthz`);
    await root.body?.cancel();
    assert.equal(root.status, 404);
    const local = await (await fetch(`${proxy.admin}/healthz`)).json();
    assert.equal(local.servers.fx.state, "running");
  } finally {
    await proxy.stop();
    await gh.close();
  }
});
