/**
 * Client kinds end to end (RFC 7591, RFC 6749 §2.3.1, the CIMD draft): client ID metadata documents
 * (CIMD) through the SDK client and by hand, the CIMD error pages, pre-registered confidential
 * clients with `client_secret_post` and `client_secret_basic`, and a restart on the same data
 * directory (clients, grants, tokens and login pins survive).
 */
import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/client/auth"
import { auth } from "@modelcontextprotocol/sdk/client/auth.js";
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { fixtureServer, type ProxyProcess, startProxy } from "../../helpers/proxy.ts";
import { text } from "../../helpers/client.ts";
import {
  connectWithLogin,
  fakeGitHub,
  LOGIN_ENV,
  loginConfig,
  TestProvider,
} from "../../helpers/oauth.ts";
import { step, withLogin } from "../../helpers/login.ts";
import type { FakeGitHub } from "../../fixtures/fake-github.ts";
import {
  authorizeUrl,
  closedPort,
  mcpInitialize,
  pageText,
  pkce,
  REDIRECT_URI,
  refresh,
  register,
  serveTls,
  signInForTokens,
} from "../../helpers/oauth-flows.ts";

/** A fetch that records `METHOD path` and the request, for asserting what the SDK sent. */
function recordingFetch() {
  const seen: { method: string; path: string; headers: Headers; body: string }[] = [];
  const fn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const req = new Request(input, init);
    const body = req.body ? await req.clone().text() : "";
    seen.push({
      method: req.method,
      path: new URL(req.url).pathname,
      headers: req.headers,
      body,
    });
    return await fetch(req);
  };
  return { fn: fn as typeof fetch, seen };
}

async function callEcho(client: Client, message: string): Promise<void> {
  assert.equal(
    text(await client.callTool({ name: "echo", arguments: { text: message } })),
    message,
  );
}

/** Connects a fresh SDK client with the provider's current tokens (no login expected). */
async function reconnect(url: string, provider: TestProvider, fetchFn: typeof fetch) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    authProvider: provider,
    fetch: fetchFn,
  });
  const client = new Client({ name: "oauth-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

async function errorPageFor(proxy: ProxyProcess, clientId: string, redirectUri = REDIRECT_URI) {
  const { challenge } = await pkce();
  const res = await fetch(
    authorizeUrl(proxy.origin, { clientId, challenge, state: "s1", redirectUri }),
    { redirect: "manual" },
  );
  const html = await res.text();
  return { status: res.status, location: res.headers.get("location"), text: pageText(html), res };
}

/** The client ID metadata document the https test server publishes for the SDK client. */
function sdkClientDocument(clientId: string) {
  return {
    body: JSON.stringify({
      client_id: clientId,
      client_name: "CIMD SDK client",
      // Loopback entries match any port (Claude Code's document lists none).
      redirect_uris: ["http://127.0.0.1/callback"],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    }),
    headers: { "cache-control": "max-age=60" },
  };
}

/** Client ID metadata documents on the fake GitHub (plain loopback http); returns the good one's URL. */
function serveFakeDocuments(gh: FakeGitHub): string {
  const clientId = `${gh.webUrl}/oauth/client.json`;
  const doc = (id: string) =>
    JSON.stringify({
      client_id: id,
      client_name: "Fake-hosted client",
      redirect_uris: [REDIRECT_URI],
    });
  const headers = { "content-type": "application/json", "cache-control": "max-age=60" };
  gh.serveStatic("/oauth/client.json", doc(clientId), headers);
  // A document whose client_id names another URL than the one it is served at.
  gh.serveStatic("/oauth/other.json", doc(clientId), headers);
  return clientId;
}

// One proxy trusts both document hosts (the https test server and the fake GitHub); the
// confidential clients register on it too.
Deno.test("client kinds (one proxy)", async (t) => {
  const docs: Record<string, { body: string; headers?: Record<string, string> }> = {};
  const tls = serveTls(docs);
  try {
    await withLogin({
      config: (gh) => ({ oauth: { clientMetadataHosts: [tls.host, new URL(gh.webUrl).host] } }),
      start: {
        // The test certificate is self-signed; only this loopback host skips verification.
        flags: (derived) => [...derived, "--unsafely-ignore-certificate-errors=127.0.0.1"],
      },
    }, async ({ gh, proxy }) => {
      await step(
        t,
        proxy,
        "CIMD: the SDK client with an https clientMetadataUrl completes the flow and a tool call without registering",
        async () => {
          const clientId = `${tls.origin}/oauth/client.json`;
          docs["/oauth/client.json"] = sdkClientDocument(clientId);
          const logged = proxy.logs().length;
          const rec = recordingFetch();
          const provider = new TestProvider({ clientMetadataUrl: clientId });
          const { client } = await connectWithLogin(proxy.url("fx"), provider, rec.fn);
          await callEcho(client, "cimd");
          await client.close();

          assert.equal(provider.info?.client_id, clientId);
          assert.ok(!rec.seen.some((r) => r.path === "/register"), "no /register request");
          assert.doesNotMatch(proxy.logs().slice(logged), /client registered/);
          const token = rec.seen.find((r) => r.path === "/token");
          assert.equal(new URLSearchParams(token!.body).get("client_id"), clientId);
          assert.ok(tls.requests.includes("/oauth/client.json"), "the proxy fetched the document");
          const consent = provider.browser.pages.find((p) => p.html.includes('value="allow"'));
          assert.ok(consent, "consent was shown");
          const shown = pageText(consent.html);
          assert.ok(shown.includes(`published by ${tls.host}`), shown);
          assert.ok(shown.includes("CIMD SDK client"), shown);
        },
      );

      await step(
        t,
        proxy,
        "CIMD: a document served by the fake on loopback http: consent shows its host, tokens and MCP work; a mismatched client_id, an unlisted host, a missing document or an unlisted redirect_uri get an error page, never a redirect",
        async () => {
          const ghHost = new URL(gh.webUrl).host;
          const clientId = serveFakeDocuments(gh);
          const logged = proxy.logs().length;
          const flow = await signInForTokens(proxy, { clientId });
          assert.equal(
            (await mcpInitialize(proxy.url("fx"), flow.tokens.access_token)).status,
            200,
          );
          const consent = flow.browser.pages.find((p) => p.html.includes('value="allow"'));
          const shown = pageText(consent!.html);
          assert.ok(shown.includes(`published by ${ghHost}`), shown);
          assert.ok(
            shown.includes("Fake-hosted client (the name this application gives itself"),
            shown,
          );
          assert.doesNotMatch(proxy.logs().slice(logged), /client registered/);
          assert.ok(gh.requests.some((r) => r.path === "/oauth/client.json"));
          // A refresh works for the CIMD client (public, no secret).
          const refreshed = await refresh(proxy.origin, { clientId }, flow.tokens.refresh_token);
          assert.equal(refreshed.status, 200);
          await refreshed.body?.cancel();

          const cases: [string, string, RegExp][] = [
            ["mismatched client_id", `${gh.webUrl}/oauth/other.json`, /client_id does not match/],
            [
              "host not listed",
              `http://127.0.0.1:${closedPort()}/oauth/client.json`,
              /not a trusted client metadata host/,
            ],
            ["missing document", `${gh.webUrl}/oauth/missing.json`, /answered HTTP 404/],
          ];
          for (const [what, id, reason] of cases) {
            const page = await errorPageFor(proxy, id);
            assert.equal(page.status, 400, what);
            assert.equal(page.location, null, `${what}: no redirect`);
            assert.match(page.res.headers.get("content-type") ?? "", /^text\/html/, what);
            assert.match(page.text, /Unknown client/, what);
            assert.match(page.text, reason, `${what}: ${page.text}`);
          }
          const wrongRedirect = await errorPageFor(proxy, clientId, "http://127.0.0.1:9/elsewhere");
          assert.equal(wrongRedirect.status, 400);
          assert.equal(wrongRedirect.location, null);
          assert.match(wrongRedirect.text, /Invalid redirect URI/);
        },
      );

      for (const method of ["client_secret_post", "client_secret_basic"] as const) {
        await step(
          t,
          proxy,
          `confidential client (${method}), pre-registered: the SDK completes the flow, calls a tool and refreshes with that method`,
          async () => {
            const reg = await register(proxy.origin, {
              client_name: `confidential ${method}`,
              token_endpoint_auth_method: method,
            });
            assert.equal(reg.token_endpoint_auth_method, method);
            assert.match(reg.client_secret ?? "", /^mop_cs_/);
            const provider = new TestProvider({ authMethod: method });
            provider.saveClientInformation(reg);
            const rec = recordingFetch();
            const url = proxy.url("fx");
            const { client } = await connectWithLogin(url, provider, rec.fn);
            await callEcho(client, method);
            await client.close();
            assert.ok(!rec.seen.some((r) => r.path === "/register"), "pre-registered: no DCR");

            const first = provider.savedTokens!;
            assert.equal(
              await auth(provider, { serverUrl: new URL(url), fetchFn: rec.fn }),
              "AUTHORIZED",
            );
            const second = provider.savedTokens!;
            assert.notEqual(second.access_token, first.access_token);
            assert.notEqual(second.refresh_token, first.refresh_token);
            const again = await reconnect(url, provider, rec.fn);
            await callEcho(again, "after refresh");
            await again.close();

            const tokenCalls = rec.seen.filter((r) => r.path === "/token");
            assert.deepEqual(
              tokenCalls.map((r) => new URLSearchParams(r.body).get("grant_type")),
              ["authorization_code", "refresh_token"],
            );
            for (const call of tokenCalls) {
              const form = new URLSearchParams(call.body);
              if (method === "client_secret_basic") {
                const basic = call.headers.get("authorization") ?? "";
                assert.match(basic, /^Basic /);
                assert.equal(atob(basic.slice(6)), `${reg.client_id}:${reg.client_secret}`);
                assert.equal(form.get("client_secret"), null);
              } else {
                assert.equal(call.headers.get("authorization"), null);
                assert.equal(form.get("client_id"), reg.client_id);
                assert.equal(form.get("client_secret"), reg.client_secret);
              }
            }
            // The secret is checked: a wrong one is 401 invalid_client.
            const bad = await refresh(proxy.origin, {
              clientId: reg.client_id,
              secret: "mop_cs_wrong",
              method,
            }, second.refresh_token!);
            assert.equal(bad.status, 401);
            assert.equal((await bad.json()).error, "invalid_client");
          },
        );
      }
    });
  } finally {
    await tls.close();
  }
});

Deno.test("restart on the same data directory: the client, its grant and tokens and the login pin survive (GitHub unreachable at restart)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-restart-" });
  const gh = await fakeGitHub();
  let proxy: ProxyProcess | undefined;
  try {
    proxy = await startProxy(
      { mcpServers: { fx: fixtureServer() }, ...loginConfig(gh, { users: ["alice"] }) },
      { env: LOGIN_ENV, dir },
    );
    await proxy.waitForLog(/pinned allow-listed login to its GitHub id login=alice id=583231/);
    const url = proxy.url("fx");
    const rec = recordingFetch();
    const provider = new TestProvider();
    const { client } = await connectWithLogin(url, provider, rec.fn);
    await callEcho(client, "before restart");
    await client.close();
    const clientId = provider.info!.client_id;
    const tokens = provider.savedTokens!;
    await proxy.stop();

    // GitHub cannot resolve logins now: admission must come from the persisted pin.
    gh.injectFault({ path: "/api/v3/users/alice", status: 503 });
    const authorizations = gh.authorizeRequests.length;
    const config = JSON.parse(await Deno.readTextFile(proxy.configPath));
    proxy = await startProxy(config, { env: LOGIN_ENV, dir });
    assert.equal(proxy.url("fx"), url, "same public URL");
    await proxy.waitForLog(/cannot resolve an allow-listed login now/);
    const seenBefore = rec.seen.length;
    const after = await reconnect(url, provider, rec.fn);
    await callEcho(after, "after restart");
    await after.close();
    assert.equal(provider.savedTokens!.access_token, tokens.access_token, "same access token");
    assert.equal(gh.authorizeRequests.length, authorizations, "no new login");
    assert.ok(!rec.seen.slice(seenBefore).some((r) => r.path === "/register"), "no new DCR");

    // The same client_id and refresh token still work at /token.
    const res = await refresh(proxy.origin, { clientId }, tokens.refresh_token!);
    assert.equal(res.status, 200, await res.clone().text());
    const next = await res.json();
    assert.equal((await mcpInitialize(url, next.access_token)).status, 200);
    assert.doesNotMatch(proxy.logs(), /client registered/);
  } catch (error) {
    console.log(proxy?.logs());
    // Whether the proxy's lookups reached the fake GitHub at all (a once-seen 15 s wait).
    console.log(
      `fake GitHub at ${gh.apiUrl} was asked:`,
      gh.requests.map((r) => `${r.method} ${r.path}`),
    );
    throw error;
  } finally {
    await proxy?.stop();
    await gh.close();
    await Deno.remove(dir, { recursive: true });
  }
});
