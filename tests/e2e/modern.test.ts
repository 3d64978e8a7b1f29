/**
 * MCP 2026-07-28 (sessionless) on `/mcp/<name>` in front of a 2025-era stdio child: the official
 * SDK v2 client pinned to the revision through the full login, next to 2025-era clients on the
 * same URL; elicitation and sampling through multi round-trip requests; the per-request
 * validation; requestState attacks; routing per mode; cancellation.
 */
import assert from "node:assert/strict";
import {
  Client as ModernClient,
  type OAuthDiscoveryState,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import {
  CONFORMANCE_FIXTURE,
  fixtureServer,
  type ProxyProcess,
  startProxy,
} from "../helpers/proxy.ts";
import { connect, inArrivalOrder } from "../helpers/client.ts";
import {
  ALICE,
  BOB,
  connectWithLogin,
  fakeGitHub,
  LOGIN_ENV,
  loginConfig,
  TestProvider,
} from "../helpers/oauth.ts";
import type { FakeGitHub } from "../fixtures/fake-github.ts";
import { countLogLines, signInForTokens, waitForNewLog } from "../helpers/oauth-flows.ts";
import { sseMessages as frames } from "../helpers/sse.ts";

const VERSION = "2026-07-28";

/** The test provider plus the discovery state the SDK v2 client checks the callback against. */
class ModernProvider extends TestProvider {
  discovery?: OAuthDiscoveryState;
  saveDiscoveryState(state: OAuthDiscoveryState) {
    this.discovery = state;
  }
  discoveryState() {
    return this.discovery;
  }
}
const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": VERSION,
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};

interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown> & {
    id?: unknown;
    result?: Record<string, unknown>;
    error?: { code: number; message: string; data?: Record<string, unknown> };
  };
}

/** POSTs one JSON-RPC message with the standard 2026 headers; the response is not read. */
function send(url: string, message: Record<string, unknown>, signal?: AbortSignal) {
  const params = message.params as Record<string, unknown>;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": VERSION,
    "mcp-method": String(message.method),
  };
  if (typeof params.name === "string") headers["mcp-name"] = params.name;
  return fetch(url, { method: "POST", signal, headers, body: JSON.stringify(message) });
}

/** POSTs one JSON-RPC message with the standard 2026 headers (override or drop with `headers`). */
async function post(
  url: string,
  message: Record<string, unknown>,
  headers: Record<string, string | null> = {},
  token?: string,
): Promise<Answer> {
  const params = message.params as Record<string, unknown> | undefined;
  const base: Record<string, string | null> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": VERSION,
    "mcp-method": String(message.method),
  };
  if (typeof params?.name === "string") base["mcp-name"] = params.name;
  if (token) base.authorization = `Bearer ${token}`;
  const merged = { ...base, ...headers };
  const sent: Record<string, string> = {};
  for (const [k, v] of Object.entries(merged)) if (v !== null) sent[k] = v;
  const res = await fetch(url, { method: "POST", headers: sent, body: JSON.stringify(message) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : {} };
}

/** Resolves once `check` holds (polled; the test's own timeout bounds it). */
async function waitFor(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(check(), `gave up waiting for ${what}`);
}

function call(id: number, method: string, params: Record<string, unknown> = {}) {
  return { jsonrpc: "2.0", id, method, params: { ...params, _meta: ENVELOPE } };
}

/** A modern client pinned to 2026-07-28 with the given capabilities and handlers. */
function modernClient(capabilities: Record<string, unknown> = {}) {
  return new ModernClient({ name: "sdk-v2", version: "2.4.0" }, {
    capabilities,
    versionNegotiation: { mode: { pin: VERSION } },
  });
}

/**
 * One proxy with login serves the tests that sign in; one without serves the others. Each test
 * uses its own clients, people or servers, and waits only for log lines written after it began.
 */
Deno.test("sessionless, with login", async (t) => {
  const gh = await fakeGitHub();
  const proxy = await startProxy({
    ...loginConfig(gh, { users: [ALICE.id, BOB.id] }),
    mcpServers: { fx: fixtureServer(), quick: fixtureServer({ inputTimeout: "1s" }) },
  }, { env: LOGIN_ENV });
  try {
    await t.step(
      "the SDK v2 client through login, next to 2025-era clients",
      () => sdkThroughLogin(proxy),
    );
    // Last: it signs Bob in at the fake GitHub.
    await t.step(
      "requestState is bound to its person, client, call and expiry",
      (t) => requestStateBound(proxy, gh, t),
    );
  } finally {
    await proxy.stop();
    await gh.close();
  }
});

Deno.test("sessionless, without login", async (t) => {
  const proxy = await startProxy({
    mcpServers: {
      fx: fixtureServer(),
      ps: fixtureServer({ mode: "per-session", warm: 0 }),
      sh: fixtureServer({ mode: "shared", cacheTtl: "30s" }),
      conf: { command: "deno", args: ["run", "--no-prompt", CONFORMANCE_FIXTURE] },
    },
  });
  try {
    await t.step(
      "per-request validation, every error echoing the id",
      (t) => validation(proxy, t),
    );
    await t.step("closing the request cancels it at the child", () => closingCancels(proxy));
    await t.step(
      "a notifications/cancelled POST ends a call already streaming",
      () => cancelledPost(proxy),
    );
    await t.step(
      "routing per mode (per-session serves them per person)",
      () => routingPerMode(proxy),
    );
    await t.step(
      "subscriptions/listen, filtered, with resource subscriptions",
      () => listen(proxy),
    );
  } finally {
    await proxy.stop();
  }
});

/** The SDK v2 client through login, next to 2025-era clients. */
async function sdkThroughLogin(proxy: ProxyProcess) {
  const provider = new ModernProvider();
  let client = modernClient();
  try {
    // First connect: 401, discovery, registration, consent, fake GitHub, code.
    let transport = new ModernTransport(new URL(proxy.url("fx")), { authProvider: provider });
    await assert.rejects(client.connect(transport));
    await transport.finishAuth(new URL(provider.lastAuthorization!.finalUrl).searchParams);
    client = modernClient();
    transport = new ModernTransport(new URL(proxy.url("fx")), { authProvider: provider });
    await client.connect(transport);
    inArrivalOrder(transport);
    assert.equal(client.getNegotiatedProtocolVersion(), VERSION);
    assert.equal(transport.sessionId, undefined);

    const tools = await client.listTools();
    assert.ok(tools.tools.some((t) => t.name === "echo"));
    const echoed = await client.callTool({ name: "echo", arguments: { text: "hi" } });
    assert.deepEqual(echoed.content, [{ type: "text", text: "hi" }]);

    const progress: number[] = [];
    const done = await client.callTool({ name: "progress", arguments: { steps: 3 } }, {
      onprogress: (p) => progress.push(p.progress),
    });
    assert.deepEqual(done.content, [{ type: "text", text: "done 3" }]);
    assert.deepEqual(progress, [1, 2, 3]);

    // The client declared no sampling: the child's request is refused, the call fails -32021.
    await assert.rejects(
      client.callTool({ name: "sample", arguments: { prompt: "x" } }),
      (error: { code?: number; data?: { requiredCapabilities?: unknown } }) => {
        assert.equal(error.code, -32021);
        assert.deepEqual(error.data?.requiredCapabilities, { sampling: {} });
        return true;
      },
    );

    // Elicitation and sampling through multi round-trip requests, answered by the client's own
    // handlers (the SDK retries with inputResponses and the requestState).
    const asking = modernClient({ elicitation: {}, sampling: {} });
    asking.setRequestHandler("elicitation/create", () => ({
      action: "accept" as const,
      content: { answer: "forty-two" },
    }));
    asking.setRequestHandler("sampling/createMessage", (request) => ({
      role: "assistant" as const,
      model: "test-model",
      content: {
        type: "text" as const,
        text: `echo ${(request.params.messages[0].content as { text: string }).text}`,
      },
    }));
    await asking.connect(
      new ModernTransport(new URL(proxy.url("fx")), { authProvider: provider }),
    );
    const elicited = await asking.callTool({ name: "elicit", arguments: { message: "q?" } });
    assert.deepEqual(elicited.content, [{ type: "text", text: "elicited: accept forty-two" }]);
    const sampled = await asking.callTool({ name: "sample", arguments: { prompt: "hello" } });
    assert.deepEqual(sampled.content, [{ type: "text", text: "sampled: echo hello" }]);
    await asking.close();

    // Change notifications through subscriptions/listen; a child restart is one too.
    let changes = 0;
    client.setNotificationHandler("notifications/tools/list_changed", () => {
      changes++;
    });
    const subscription = await client.listen({ toolsListChanged: true, promptsListChanged: true });
    // The fixture's prompts capability has no listChanged: that part is not honored.
    assert.deepEqual(subscription.honoredFilter, { toolsListChanged: true });
    await client.callTool({ name: "toggle", arguments: {} });
    await waitFor(() => changes === 1, "the toggle's list_changed");
    await client.callTool({ name: "crash", arguments: {} }).catch(() => {});
    await waitFor(() => changes === 2, "the restart's list_changed");
    await subscription.close();

    // In its automatic mode (server/discover first, 2025 fallback) the SDK v2 client selects
    // 2026-07-28 too.
    const auto = new ModernClient({ name: "sdk-v2-auto", version: "2.4.0" }, {
      versionNegotiation: { mode: "auto" },
    });
    await auto.connect(new ModernTransport(new URL(proxy.url("fx")), { authProvider: provider }));
    assert.equal(auto.getNegotiatedProtocolVersion(), VERSION);
    await auto.close();

    // A 2025-era client (SDK v1) and the legacy endpoint keep working with the same login.
    const v1 = await connectWithLogin(proxy.url("fx"), new TestProvider());
    const r1 = await v1.client.callTool({ name: "echo", arguments: { text: "v1" } });
    assert.deepEqual(r1.content, [{ type: "text", text: "v1" }]);
    await v1.client.close();
    const sse = await connectWithLogin(
      proxy.url("fx").replace("/mcp/", "/sse/"),
      new TestProvider(),
      undefined,
      "sse",
    );
    const r2 = await sse.client.callTool({ name: "echo", arguments: { text: "sse" } });
    assert.deepEqual(r2.content, [{ type: "text", text: "sse" }]);
    await sse.client.close();

    // Without the token, a 2026 request is refused like any other.
    const anonymous = await post(proxy.url("fx"), call(1, "tools/list"));
    assert.equal(anonymous.status, 401);
  } finally {
    await client.close().catch(() => {});
  }
}

/** Per-request validation, every error echoing the id. */
async function validation(proxy: ProxyProcess, t: Deno.TestContext) {
  const url = proxy.url("fx");
  await t.step("missing _meta fields: 400 / -32602", async () => {
    const noMeta = await post(url, { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} });
    assert.equal(noMeta.status, 400);
    assert.equal(noMeta.json.error?.code, -32602);
    assert.equal(noMeta.json.id, 1);
    const noCaps = await post(url, {
      jsonrpc: "2.0",
      id: "two",
      method: "tools/list",
      params: { _meta: { "io.modelcontextprotocol/protocolVersion": VERSION } },
    });
    assert.equal(noCaps.status, 400);
    assert.equal(noCaps.json.error?.code, -32602);
    assert.equal(noCaps.json.id, "two");
  });

  await t.step("header and body disagree: 400 / -32020", async () => {
    const version = await post(url, {
      ...call(3, "tools/list"),
      params: {
        _meta: { ...ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2027-01-01" },
      },
    });
    assert.equal(version.status, 400);
    assert.equal(version.json.error?.code, -32020);
    assert.equal(version.json.id, 3);
    const method = await post(url, call(4, "tools/list"), { "mcp-method": "prompts/list" });
    assert.equal(method.json.error?.code, -32020);
    assert.equal(method.json.id, 4);
    const noMethod = await post(url, call(5, "tools/list"), { "mcp-method": null });
    assert.equal(noMethod.json.error?.code, -32020);
    const name = await post(url, call(6, "tools/call", { name: "echo", arguments: {} }), {
      "mcp-name": "add",
    });
    assert.equal(name.status, 400);
    assert.equal(name.json.error?.code, -32020);
    const noName = await post(url, call(7, "tools/call", { name: "echo", arguments: {} }), {
      "mcp-name": null,
    });
    assert.equal(noName.json.error?.code, -32020);
    const badB64 = await post(url, call(8, "tools/call", { name: "echo", arguments: {} }), {
      "mcp-name": "=?base64?!!!?=",
    });
    assert.equal(badB64.json.error?.code, -32020);
  });

  await t.step("Mcp-Name in the =?base64?…?= form is decoded", async () => {
    const r = await post(url, call(9, "tools/call", { name: "echo", arguments: { text: "b" } }), {
      "mcp-name": `=?base64?${btoa("echo")}?=`,
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.id, 9);
    assert.equal(r.json.result?.resultType, "complete");
  });

  await t.step("an unsupported version: 400 / -32022 listing both eras", async () => {
    const r = await post(url, {
      ...call(10, "server/discover"),
      params: {
        _meta: { ...ENVELOPE, "io.modelcontextprotocol/protocolVersion": "v999.0.0" },
      },
    }, { "mcp-protocol-version": "v999.0.0" });
    assert.equal(r.status, 400);
    assert.equal(r.json.error?.code, -32022);
    assert.equal(r.json.id, 10);
    assert.deepEqual(r.json.error?.data, {
      supported: ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"],
      requested: "v999.0.0",
    });
  });

  await t.step("removed and unknown methods: 404 / -32601", async () => {
    for (const method of ["initialize", "ping", "logging/setLevel", "resources/subscribe"]) {
      const r = await post(url, call(11, method));
      assert.equal(r.status, 404, method);
      assert.equal(r.json.error?.code, -32601, method);
      assert.equal(r.json.id, 11);
    }
    const unknown = await post(url, call(12, "unknown/method"));
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error?.code, -32601);
  });

  await t.step("GET and DELETE: 405; notifications: 202; no session minted", async () => {
    for (const method of ["GET", "DELETE"]) {
      const res = await fetch(url, { method, headers: { "mcp-protocol-version": VERSION } });
      await res.body?.cancel();
      assert.equal(res.status, 405, method);
    }
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "mcp-protocol-version": VERSION },
      body: JSON.stringify({
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: 99 },
      }),
    });
    await res.body?.cancel();
    assert.equal(res.status, 202);
    const listed = await post(url, call(13, "tools/list"), { "mcp-session-id": "bogus" });
    assert.equal(listed.status, 200);
    assert.equal(listed.headers.get("mcp-session-id"), null);
  });

  await t.step("server/discover from the child's InitializeResult", async () => {
    const r = await post(url, call(14, "server/discover"));
    assert.equal(r.status, 200);
    const result = r.json.result!;
    assert.equal(result.resultType, "complete");
    assert.deepEqual(result.supportedVersions, [
      "2026-07-28",
      "2025-11-25",
      "2025-06-18",
      "2025-03-26",
    ]);
    const caps = result.capabilities as Record<string, Record<string, unknown>>;
    assert.ok(caps.tools && caps.resources && caps.prompts);
    // The child's change notifications are delivered through subscriptions/listen.
    assert.equal(caps.tools.listChanged, true);
    const meta = result._meta as Record<string, { name: string }>;
    assert.equal(meta["io.modelcontextprotocol/serverInfo"].name, "fixture");
  });

  await t.step("results: resultType, caching hints, serverInfo", async () => {
    const r = await post(url, call(15, "tools/list"));
    const result = r.json.result!;
    assert.equal(result.resultType, "complete");
    assert.equal(result.ttlMs, 0);
    // No login and a per-user child: still one child per person, so private.
    assert.equal(result.cacheScope, "private");
    assert.ok((result._meta as Record<string, unknown>)["io.modelcontextprotocol/serverInfo"]);
    const called = await post(
      url,
      call(16, "tools/call", { name: "echo", arguments: { text: "x" } }),
    );
    assert.equal(called.json.result?.ttlMs, undefined);
  });

  await t.step("a 2026 call waiting for its client does not take a session's logs", async () => {
    const asked = await post(url, {
      ...call(17, "tools/call", { name: "elicit", arguments: { message: "q?" } }),
      params: {
        name: "elicit",
        arguments: { message: "q?" },
        _meta: { ...ENVELOPE, "io.modelcontextprotocol/clientCapabilities": { elicitation: {} } },
      },
    });
    assert.equal(asked.json.result?.resultType, "input_required");
    const v1 = await connect(url);
    await v1.client.callTool({ name: "log", arguments: { message: "still mine" } });
    assert.deepEqual(v1.logs, ["still mine"]);
    await v1.close();
  });

  await t.step("a 2025-era session on the same URL is untouched", async () => {
    const v1 = await connect(url);
    const r = await v1.client.callTool({ name: "echo", arguments: { text: "old" } });
    assert.deepEqual(r.content, [{ type: "text", text: "old" }]);
    assert.ok(v1.sessionId());
    await v1.close();
  });
}

/** Closing the request cancels it at the child. */
async function closingCancels(proxy: ProxyProcess) {
  const url = proxy.url("fx");
  await post(url, call(1, "tools/list")); // the child is running
  const started = countLogLines(proxy, /fixture: slow started/);
  const cancelled = countLogLines(proxy, /fixture: cancelled/);
  const aborter = new AbortController();
  const message = call(2, "tools/call", {
    name: "slow",
    arguments: { ms: 60_000, announce: true },
  });
  const pending = send(url, message, aborter.signal);
  // Closed once the child is working on it.
  await waitForNewLog(proxy, /fixture: slow started/, started, 30_000);
  aborter.abort();
  await assert.rejects(pending);
  await waitForNewLog(proxy, /fixture: cancelled/, cancelled, 30_000);
}

/** A notifications/cancelled POST ends a call already streaming. */
async function cancelledPost(proxy: ProxyProcess) {
  const url = proxy.url("fx");
  const message = call(1, "tools/call", {
    name: "progress",
    arguments: { steps: 2, delayMs: 60_000 },
  });
  (message.params._meta as Record<string, unknown>) = { ...ENVELOPE, progressToken: "p" };
  const res = await send(url, message);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const stream = frames(res);
  assert.equal((await stream.next()).value!.method, "notifications/progress");
  const cancel = await post(url, {
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: 1, _meta: ENVELOPE },
  });
  assert.equal(cancel.status, 202);
  const last = (await stream.next()).value!;
  assert.equal(last.id, 1);
  assert.equal((last.error as { code: number }).code, -32800);
  assert.equal((await stream.next()).done, true);
}

/** Routing per mode (per-session serves them per person). */
async function routingPerMode(proxy: ProxyProcess) {
  const pid = async (name: string, id: number) => {
    const r = await post(proxy.url(name), call(id, "tools/call", { name: "pid", arguments: {} }));
    return (r.json.result!.content as { text: string }[])[0].text;
  };
  const a = await pid("ps", 1);
  assert.equal(await pid("ps", 2), a);
  const session = await connect(proxy.url("ps"));
  const own = await session.client.callTool({ name: "pid", arguments: {} });
  assert.notEqual((own.content as { text: string }[])[0].text, a);
  await session.close();

  // A shared child without login answers everyone alike: public, with the configured TTL.
  const listed = await post(proxy.url("sh"), call(3, "tools/list"));
  assert.equal(listed.json.result?.cacheScope, "public");
  assert.equal(listed.json.result?.ttlMs, 30_000);
}

/** requestState is bound to its person, client, call and expiry. */
async function requestStateBound(proxy: ProxyProcess, gh: FakeGitHub, t: Deno.TestContext) {
  const alice = (await signInForTokens(proxy)).tokens.access_token;
  const aliceOther = (await signInForTokens(proxy)).tokens.access_token; // another client
  gh.setCurrentUser(BOB.id);
  const bob = (await signInForTokens(proxy)).tokens.access_token;
  const url = proxy.url("fx");
  const elicit = (id: number, extra: Record<string, unknown> = {}) => ({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: {
      name: "elicit",
      arguments: { message: "q?" },
      ...extra,
      _meta: { ...ENVELOPE, "io.modelcontextprotocol/clientCapabilities": { elicitation: {} } },
    },
  });
  const first = await post(url, elicit(1), {}, alice);
  const result = first.json.result!;
  assert.equal(result.resultType, "input_required");
  const inputs = result.inputRequests as Record<string, { method: string }>;
  assert.deepEqual(Object.keys(inputs), ["input-1"]);
  assert.equal(inputs["input-1"].method, "elicitation/create");
  const state = result.requestState as string;
  const answer = { "input-1": { action: "accept", content: { answer: "yes" } } };
  const retry = (id: number, requestState: string, token: string, extra = {}) =>
    post(url, elicit(id, { inputResponses: answer, requestState, ...extra }), {}, token);
  const refused = async (answer: Promise<Answer>, why: string) => {
    const r = await answer;
    assert.equal(r.json.error?.code, -32602, JSON.stringify(r.json));
    assert.equal((r.json.error?.data as { requestState?: string })?.requestState, why);
  };

  await t.step("tampered and truncated", async () => {
    await refused(retry(2, `${state.slice(0, -3)}AAA`, alice), "invalid");
    await refused(retry(3, state.slice(0, -10), alice), "invalid");
  });
  await t.step("another person, the same person through another client", async () => {
    await refused(retry(4, state, bob), "principal");
    await refused(retry(5, state, aliceOther), "principal");
  });
  await t.step("another tool call", async () => {
    const other = await post(
      url,
      {
        ...call(6, "tools/call", { name: "echo", arguments: { text: "x" }, requestState: state }),
      },
      {},
      alice,
    );
    assert.equal(other.json.error?.code, -32602);
    await refused(retry(7, state, alice, { arguments: { message: "other" } }), "request");
  });
  await t.step(
    "the genuine retry completes; replaying it after completion is refused",
    async () => {
      const done = await retry(8, state, alice);
      assert.equal(done.json.id, 8);
      assert.equal(done.json.result?.resultType, "complete");
      assert.deepEqual(done.json.result?.content, [{
        type: "text",
        text: "elicited: accept yes",
      }]);
      await refused(retry(9, state, alice), "gone");
    },
  );
  await t.step("expired: the waiting call is abandoned, its state refused", async () => {
    const quick = proxy.url("quick");
    const asked = await post(quick, elicit(10), {}, alice);
    const quickState = asked.json.result!.requestState as string;
    // inputTimeout is 1 s: wait until the proxy gave up on it.
    await proxy.waitForLog(/input request unanswered in time.* server=quick .*name=elicit/);
    const late = await post(
      quick,
      elicit(11, { inputResponses: answer, requestState: quickState }),
      {},
      alice,
    );
    assert.equal(late.json.error?.code, -32602);
    assert.equal((late.json.error?.data as { requestState: string }).requestState, "expired");
    // At the expiry the child's elicitation got an error and its call was cancelled.
    await proxy.waitForLog(/input request unanswered in time.* server=quick .*name=elicit/);
    await proxy.waitForLog(/fixture: elicit failed: .*in time/);
    await proxy.waitForLog(/ audit .*server=quick .*tool=elicit .*outcome=cancelled/);
  });
}

/** subscriptions/listen, filtered, with resource subscriptions (on `conf`, used by no other). */
async function listen(proxy: ProxyProcess) {
  const url = proxy.url("conf");
  const WATCHED = "test://watched-resource";
  const open = async (id: number, notifications: Record<string, unknown>) => {
    const aborter = new AbortController();
    const res = await send(
      url,
      call(id, "subscriptions/listen", { notifications }),
      aborter.signal,
    );
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    return { frames: frames(res), close: () => aborter.abort() };
  };
  const tool = (id: number, name: string, args: Record<string, unknown> = {}) =>
    post(url, call(id, "tools/call", { name, arguments: args }));
  const discover = await post(url, call(1, "server/discover"));
  const caps = discover.json.result!.capabilities as Record<string, Record<string, unknown>>;
  assert.equal(caps.tools.listChanged, true);
  assert.equal(caps.resources.subscribe, true);

  const a = await open(2, { resourceSubscriptions: [WATCHED], toolsListChanged: true });
  const ack = (await a.frames.next()).value!;
  assert.equal(ack.method, "notifications/subscriptions/acknowledged");
  const params = ack.params as Record<string, Record<string, unknown>>;
  assert.deepEqual(params.notifications, {
    toolsListChanged: true,
    resourceSubscriptions: [WATCHED],
  });
  assert.equal(params._meta["io.modelcontextprotocol/subscriptionId"], 2);
  await proxy.waitForLog(/fixture: subscribed to test:\/\/watched-resource/);

  const b = await open(3, { resourceSubscriptions: [WATCHED] });
  await b.frames.next();
  // Not asked for by either: never delivered.
  await tool(4, "test_trigger_prompt_change");
  assert.match(
    JSON.stringify((await tool(5, "test_touch_resource", { uri: WATCHED })).json),
    /touched/,
  );
  const updated = (await a.frames.next()).value!;
  assert.equal(updated.method, "notifications/resources/updated");
  assert.deepEqual(updated.params, {
    uri: WATCHED,
    _meta: { "io.modelcontextprotocol/subscriptionId": 2 },
  });
  assert.equal((await b.frames.next()).value!.method, "notifications/resources/updated");
  await tool(6, "test_trigger_tool_change");
  assert.equal((await a.frames.next()).value!.method, "notifications/tools/list_changed");

  // The child was subscribed once.
  const subscribed = () => proxy.logs().split('text="fixture: subscribed to').length - 1;
  assert.equal(subscribed(), 1);

  // A new child after a crash: listeners hear the list change, and the new child is subscribed
  // to the watched resource again (once, for both listeners).
  const pid = Number(/child started child="conf#\d+" pid=(\d+)/.exec(proxy.logs())![1]);
  Deno.kill(pid, "SIGKILL");
  assert.equal((await a.frames.next()).value!.method, "notifications/tools/list_changed");
  await waitFor(() => subscribed() === 2, "the new child subscribed");
  assert.match(
    JSON.stringify((await tool(9, "test_touch_resource", { uri: WATCHED })).json),
    /touched/,
  );
  assert.equal((await a.frames.next()).value!.method, "notifications/resources/updated");
  assert.equal((await b.frames.next()).value!.method, "notifications/resources/updated");
  assert.equal(subscribed(), 2);

  // It is unsubscribed when the last listener goes.
  a.close();
  await tool(7, "test_simple_text");
  assert.ok(!proxy.logs().includes("fixture: unsubscribed"));
  b.close();
  await proxy.waitForLog(/fixture: unsubscribed from test:\/\/watched-resource/);

  // Nothing the child can deliver: the acknowledgement, then the end of the subscription.
  const none = await open(8, { resourcesListChanged: false });
  const all = [];
  for await (const frame of none.frames) all.push(frame);
  assert.equal(all.length, 2);
  assert.deepEqual((all[0].params as Record<string, unknown>).notifications, {});
  assert.equal(all[1].id, 8);
  assert.equal((all[1].result as Record<string, unknown>).resultType, "complete");

  // A notifications/cancelled naming the listen request ends the stream, without a result
  // (how the SDK v2 client's McpSubscription.close() ends it).
  const cancelled = await open(12, { toolsListChanged: true });
  await cancelled.frames.next();
  const cancel = await post(url, {
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: 12, _meta: ENVELOPE },
  });
  assert.equal(cancel.status, 202);
  assert.equal((await cancelled.frames.next()).done, true);
}
