/**
 * The access log, end to end: one JSON line per request with time, client IP (and peer when
 * different), method, route class (never the raw path, a secret path or a query), status and
 * duration, plus user, client, server, JSON-RPC method and tool for MCP calls. After a full
 * login, a refresh, a revocation and a tool call with a unique marker, nothing the proxy wrote
 * (stdout and stderr, at debug level) contains any secret the test used.
 */
import { parseLogLine } from "../../helpers/logs.ts";
import assert from "node:assert/strict";
import { fixtureServer, startProxy } from "../../helpers/proxy.ts";
import { text } from "../../helpers/client.ts";
import {
  ALICE,
  connectWithLogin,
  fakeGitHub,
  GITHUB_CLIENT_SECRET,
  LOGIN_ENV,
  loginConfig,
  TestProvider,
} from "../../helpers/oauth.ts";
import { consentForm, RELAXED_LIMITS } from "../../helpers/oauth-raw.ts";
import {
  type AccessLine,
  accessLines,
  from,
  MCP_HEADERS,
  nextAccess,
  raw,
  rpc,
  syncAccess,
  TRUST_LOOPBACK,
} from "./edge-helpers.ts";

const SECRET_PATH = "/hUm7Qx2pLr9";
const CLIENT_IP = "203.0.113.77";
const ROUTES = new Set([
  "mcp",
  "sse",
  "register",
  "token",
  "revoke",
  "authorize",
  "consent",
  "callback",
  "metadata",
  "health",
  "none",
]);

function assertShape(line: AccessLine): void {
  const where = JSON.stringify(line);
  assert.equal(line.type, "access");
  assert.equal(line.level, "info");
  assert.ok(!Number.isNaN(Date.parse(line.time)) && line.time.endsWith("Z"), where);
  assert.equal(typeof line.ip, "string", where);
  assert.ok(line.peer === undefined || line.peer !== line.ip, `peer only when different: ${where}`);
  assert.match(line.method, /^[A-Z]+$/, where);
  assert.ok(ROUTES.has(line.route), `route class: ${where}`);
  assert.equal(typeof line.status, "number", where);
  assert.ok(typeof line.ms === "number" && line.ms >= 0, where);
  const allowed = new Set([
    "type",
    "time",
    "level",
    "ip",
    "peer",
    "method",
    "route",
    "status",
    "ms",
    "user_id",
    "login",
    "client_id",
    "server",
    "rpc",
    "tool",
  ]);
  for (const key of Object.keys(line)) {
    assert.ok(allowed.has(key), `unexpected field ${key}: ${where}`);
  }
}

Deno.test("access log: one line per request with the route class and MCP details; no secret, token, code, cookie, verifier or tool argument anywhere in the output", async () => {
  const gh = await fakeGitHub();
  const proxy = await startProxy(
    {
      mcpServers: { fx: fixtureServer() },
      ...loginConfig(gh),
      logLevel: "debug",
      limits: RELAXED_LIMITS,
      network: TRUST_LOOPBACK,
    },
    { env: LOGIN_ENV, publicPath: SECRET_PATH },
  );
  const secrets = new Map<string, string>();
  const keep = (what: string, value: string | undefined | null) => {
    assert.ok(value && value.length >= 8, `${what} is a usable secret: ${value}`);
    secrets.set(`${what}`, value);
  };
  try {
    const withIp: typeof fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set("x-forwarded-for", CLIENT_IP);
      return fetch(input, { ...init, headers });
    };
    const provider = new TestProvider({ authMethod: "client_secret_post" });
    const { client } = await connectWithLogin(proxy.url("fx"), provider, withIp);
    const marker = `tool-arg-${crypto.randomUUID()}`;
    assert.equal(
      text(await client.callTool({ name: "echo", arguments: { text: marker } })),
      marker,
    );
    // A failing call with the marker as well (error paths must not log arguments either).
    await client.callTool({ name: "add", arguments: { a: marker, b: 1 } }).catch(() => {});
    await client.close();

    const info = provider.info as { client_id: string; client_secret?: string };
    const tokens = provider.savedTokens!;
    keep("tool argument", marker);
    keep("GitHub client secret", GITHUB_CLIENT_SECRET);
    gh.issuedTokens.forEach((t, i) => keep(`GitHub token ${i}`, t));
    gh.issuedCodes.forEach((c, i) => keep(`GitHub code ${i}`, c));
    gh.authorizeRequests.forEach((r, i) => keep(`GitHub state ${i}`, r.state));
    gh.tokenRequests.forEach((r, i) => {
      if (r.params.code_verifier) keep(`GitHub PKCE verifier ${i}`, r.params.code_verifier);
    });
    keep("access token", tokens.access_token);
    keep("refresh token", tokens.refresh_token);
    keep("authorization code", provider.code());
    keep("client secret", info.client_secret);
    keep("PKCE verifier", provider.verifier);
    for (const origin of [proxy.origin, gh.webUrl]) {
      for (const pair of (provider.browser.jar.header(origin + "/") ?? "").split("; ")) {
        if (pair) keep(`cookie ${pair.split("=")[0]}`, pair.slice(pair.indexOf("=") + 1));
      }
    }
    const consent = provider.browser.pages.map((p) => consentForm(p.html)).find((f) => f);
    assert.ok(consent, "the consent page was seen");
    keep("consent transaction", consent.txn);
    keep("consent CSRF token", consent.csrf);

    // A refresh and a revocation with the client secret.
    const base = `${proxy.origin}${SECRET_PATH}`;
    const form = { "content-type": "application/x-www-form-urlencoded", ...from(CLIENT_IP) };
    const refreshed = await fetch(`${base}/token`, {
      method: "POST",
      headers: form,
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: tokens.refresh_token!,
        client_id: info.client_id,
        client_secret: info.client_secret!,
      }).toString(),
    });
    const next = await refreshed.json();
    assert.equal(refreshed.status, 200, JSON.stringify(next));
    keep("refreshed access token", next.access_token);
    keep("refreshed refresh token", next.refresh_token);
    const revoked = await fetch(`${base}/revoke`, {
      method: "POST",
      headers: form,
      body: new URLSearchParams({
        token: next.refresh_token,
        client_id: info.client_id,
        client_secret: info.client_secret!,
      }).toString(),
    });
    await revoked.body?.cancel();
    assert.equal(revoked.status, 200);
    // The revocation's own line may still be on its way through the log queue.
    await proxy.waitForLog(/ access .*route=revoke/);

    // Then a series of requests, each of which must leave exactly one line, in order.
    const guess = `mop_at_${crypto.randomUUID()}`;
    const badCode = `mop_code_${crypto.randomUUID()}`;
    const queryMarker = `q-${crypto.randomUUID()}`;
    keep("guessed token", guess);
    keep("bad code", badCode);
    keep("query value", queryMarker);
    await syncAccess(proxy);
    const before = accessLines(proxy).length;
    const series: [string, () => Promise<unknown>][] = [
      ["GET health 200", () => fetch(`${base}/healthz`)],
      ["GET none 404", () => fetch(`${proxy.origin}/wp-login.php?pw=${queryMarker}`)],
      ["POST mcp 401", () =>
        fetch(`${base}/mcp/fx?token=${queryMarker}`, {
          method: "POST",
          headers: { ...MCP_HEADERS, ...from(CLIENT_IP), authorization: `Bearer ${guess}` },
          body: rpc(1, "tools/call", { name: "echo", arguments: { text: marker } }),
        })],
      [
        "GET metadata 200",
        () => fetch(`${proxy.origin}/.well-known/oauth-protected-resource${SECRET_PATH}/mcp/fx`),
      ],
      ["POST token 400", () =>
        fetch(`${base}/token`, {
          method: "POST",
          headers: form,
          body: new URLSearchParams({
            grant_type: "authorization_code",
            code: badCode,
            code_verifier: queryMarker,
            redirect_uri: "http://127.0.0.1:9/callback",
            client_id: info.client_id,
            client_secret: info.client_secret!,
          }).toString(),
        })],
      [
        "GET authorize 400",
        () =>
          fetch(`${base}/authorize?client_id=${info.client_id}&state=${queryMarker}`, {
            redirect: "manual",
          }),
      ],
      [
        "GET none 421",
        () =>
          raw(proxy.origin, [
            `GET ${SECRET_PATH}/healthz?x=${queryMarker} HTTP/1.1`,
            "Host: evil.example",
            "Connection: close",
          ]),
      ],
      [
        "GET none 431",
        () =>
          fetch(`${base}/healthz?x=${queryMarker}`, {
            headers: { "x-pad": queryMarker.repeat(1000) },
          }),
      ],
    ];
    for (const [i] of series.entries()) {
      const res = await series[i][1]();
      if (res instanceof Response) await res.body?.cancel();
      // In order: the next request goes once this one's line is written.
      await nextAccess(proxy, before + i);
    }
    await proxy.stop();

    const lines = accessLines(proxy);
    for (const line of lines) assertShape(line);
    assert.deepEqual(
      lines.slice(before).map((l) => `${l.method} ${l.route} ${l.status}`),
      series.map(([label]) => label),
      "exactly one line per request",
    );
    const guessed = lines.slice(before)[2];
    assert.equal(guessed.ip, CLIENT_IP);
    assert.equal(guessed.peer, "127.0.0.1");
    assert.equal(guessed.server, "fx");
    assert.equal(guessed.user_id, undefined, "no user for a failed bearer check");

    // The MCP calls of the session name who, with which client, what and which tool.
    const call = lines.find((l) => l.rpc === "tools/call" && l.tool === "echo" && l.status === 200);
    assert.ok(call, "the tools/call line");
    assert.deepEqual(
      {
        ip: call.ip,
        peer: call.peer,
        method: call.method,
        route: call.route,
        user_id: call.user_id,
        login: call.login,
        client_id: call.client_id,
        server: call.server,
      },
      {
        ip: CLIENT_IP,
        peer: "127.0.0.1",
        method: "POST",
        route: "mcp",
        user_id: ALICE.id,
        login: ALICE.login,
        client_id: info.client_id,
        server: "fx",
      },
    );
    assert.ok(lines.some((l) => l.rpc === "initialize" && l.user_id === ALICE.id));
    assert.ok(lines.some((l) => l.route === "consent" && l.status === 303));
    assert.ok(lines.some((l) => l.route === "callback"));

    // The route class, never the path: no secret path, no query, no raw endpoint path.
    const written = proxy.logs().split("\n").filter((l) => parseLogLine(l)?.message === "access");
    assert.ok(written.length >= 10, "the access lines were found");
    for (const line of written) {
      for (const needle of [SECRET_PATH, "?", "/mcp/", "/.well-known", "wp-login", "/healthz"]) {
        assert.ok(!line.includes(needle), `access line shows ${needle}: ${line}`);
      }
    }

    const output = proxy.stdout() + proxy.logs();
    assert.ok(output.includes(info.client_id), "sanity: the output was captured");
    const leaked = [...secrets].filter(([, value]) => output.includes(value)).map(([what]) => what);
    assert.deepEqual(leaked, [], `secrets in the proxy's output: ${leaked.join(", ")}`);
    assert.ok(secrets.size >= 15, `${secrets.size} secrets checked`);
  } catch (error) {
    console.log(proxy.stdout(), proxy.logs());
    throw error;
  } finally {
    await proxy.stop();
    await gh.close();
  }
});
