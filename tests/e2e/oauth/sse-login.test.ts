/**
 * Login on the legacy HTTP+SSE endpoint: `/sse/<name>` is a protected resource of its own for
 * discovery (RFC 9728 §3.3: the metadata's `resource` must be the URL the client connects to),
 * its 401s point at that metadata, and `/authorize` and `/token` accept its URL as the same
 * server, so a token for either URL of one server works on both and never on another server.
 * The official SDK client's SSE transport does its own OAuth against the fake GitHub.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../../helpers/proxy.ts";
import { sseUrl, text } from "../../helpers/client.ts";
import {
  connectWithLogin,
  fakeGitHub,
  LOGIN_ENV,
  loginConfig,
  TestProvider,
} from "../../helpers/oauth.ts";
import {
  bearerChallenge,
  expectAccepted,
  expectError,
  expectTokenRefused,
  expectTokens,
  TokenClient,
} from "../../helpers/oauth-tokens.ts";

const PRM = "/.well-known/oauth-protected-resource";

/** Opens `GET /sse/<name>` with a token (or none); returns the status and the challenge. */
async function openSse(url: string, token?: string) {
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { headers });
  await res.body?.cancel();
  return { status: res.status, challenge: res.headers.get("www-authenticate") };
}

async function metadataOf(url: string) {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

Deno.test("legacy SSE login: metadata, challenges, SDK SSE transport, one token for both URLs", async (t) => {
  const gh = await fakeGitHub();
  let proxy: ProxyProcess | undefined;
  try {
    proxy = await startProxy(
      { mcpServers: { fx: fixtureServer(), fy: fixtureServer() }, ...loginConfig(gh) },
      { env: LOGIN_ENV },
    );
    const origin = proxy.origin;
    const mcpFx = proxy.url("fx");
    const sseFx = sseUrl(mcpFx);
    const sseFy = sseUrl(proxy.url("fy"));

    await t.step("/sse/<name> has its own metadata whose resource is the /sse URL", async () => {
      const sse = await metadataOf(`${origin}${PRM}/sse/fx`);
      assert.equal(sse.status, 200);
      assert.equal(sse.body.resource, sseFx);
      assert.deepEqual(sse.body.authorization_servers, [origin]);
      assert.deepEqual(sse.body.scopes_supported, ["mcp"]);
      const mcp = await metadataOf(`${origin}${PRM}/mcp/fx`);
      assert.equal(mcp.body.resource, mcpFx);
      assert.equal((await metadataOf(`${origin}${PRM}/sse/nope`)).status, 404);
    });

    await t.step("401s on /sse and its message endpoint point at the /sse metadata", async () => {
      const expected = `${origin}${PRM}/sse/fx`;
      const bare = await openSse(sseFx);
      assert.equal(bare.status, 401);
      assert.equal(bearerChallenge(bare.challenge).resource_metadata, expected);
      const bad = await openSse(sseFx, "mop_at_not-a-real-token");
      assert.equal(bad.status, 401);
      const params = bearerChallenge(bad.challenge);
      assert.equal(params.resource_metadata, expected);
      assert.equal(params.error, "invalid_token");
      const post = await fetch(`${sseFx}/messages?sessionId=x`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
      });
      await post.body?.cancel();
      assert.equal(post.status, 401);
      assert.equal(
        bearerChallenge(post.headers.get("www-authenticate")).resource_metadata,
        expected,
      );
      // The Streamable HTTP endpoint keeps pointing at its own metadata.
      const mcp = await fetch(mcpFx, { method: "POST" });
      await mcp.body?.cancel();
      assert.equal(
        bearerChallenge(mcp.headers.get("www-authenticate")).resource_metadata,
        `${origin}${PRM}/mcp/fx`,
      );
    });

    let sseToken = "";
    await t.step("the SDK's SSE transport logs in by itself and calls a tool", async () => {
      const provider = new TestProvider({ clientName: "SSE client" });
      const { client } = await connectWithLogin(sseFx, provider, undefined, "sse");
      assert.equal(
        text(await client.callTool({ name: "echo", arguments: { text: "over sse" } })),
        "over sse",
      );
      await client.close();
      // It asked for the /sse URL as the resource, at /authorize and at /token.
      assert.equal(provider.authorizationUrls[0].searchParams.get("resource"), sseFx);
      sseToken = provider.savedTokens!.access_token;
    });

    await t.step("a token for /sse/fx works on /mcp/fx, never on fy", async () => {
      await expectAccepted(mcpFx, sseToken);
      await expectTokenRefused(origin, "fy", sseToken);
      const other = await openSse(sseFy, sseToken);
      assert.equal(other.status, 401);
      assert.equal(bearerChallenge(other.challenge).error, "invalid_token");
    });

    await t.step("a token for /mcp/fx works on /sse/fx, never on /sse/fy", async () => {
      const tc = new TokenClient(origin);
      const client = await tc.register("none");
      const pair = await tc.login(client, { resource: mcpFx });
      assert.equal((await openSse(sseFx, pair.access_token)).status, 200);
      assert.equal((await openSse(sseFy, pair.access_token)).status, 401);
      // The /sse URL at /token and at refresh is the same server as the /mcp grant.
      const grant = await tc.code(client, { resource: sseFx });
      const viaSse = expectTokens(await tc.exchange(client, grant, { resource: mcpFx }));
      assert.equal((await openSse(sseFx, viaSse.access_token)).status, 200);
      const refreshed = expectTokens(
        await tc.refresh(client, viaSse.refresh_token, { resource: sseFx }),
      );
      await expectAccepted(mcpFx, refreshed.access_token);
      expectError(
        await tc.refresh(client, refreshed.refresh_token, { resource: sseFy }),
        "invalid_target",
      );
      // A whole-origin grant narrowed at /token through the /sse URL gets fx only.
      const wide = await tc.code(client);
      const narrowed = expectTokens(await tc.exchange(client, wide, { resource: sseFx }));
      assert.equal((await openSse(sseFx, narrowed.access_token)).status, 200);
      await expectTokenRefused(origin, "fy", narrowed.access_token);
    });
  } catch (error) {
    console.log(proxy?.logs());
    throw error;
  } finally {
    await proxy?.stop();
    await gh.close();
  }
});

Deno.test("legacy SSE login: with legacySse off, the /sse resource does not exist", async () => {
  const gh = await fakeGitHub();
  const proxy = await startProxy(
    { mcpServers: { fx: fixtureServer() }, legacySse: false, ...loginConfig(gh) },
    { env: LOGIN_ENV },
  );
  try {
    const origin = proxy.origin;
    assert.equal((await metadataOf(`${origin}${PRM}/sse/fx`)).status, 404);
    assert.equal((await metadataOf(`${origin}${PRM}/mcp/fx`)).status, 200);
    const tc = new TokenClient(origin);
    const client = await tc.register("none");
    const grant = await tc.code(client);
    expectError(
      await tc.exchange(client, grant, { resource: sseUrl(proxy.url("fx")) }),
      "invalid_target",
    );
  } finally {
    await proxy.stop();
    await gh.close();
  }
});
