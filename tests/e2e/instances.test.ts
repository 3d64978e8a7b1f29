/**
 * Several instances behind one public URL: two proxies on one PostgreSQL database (a throwaway
 * cluster, tests/helpers/postgres.ts), with a round-robin front alternating between them per
 * request. A 2025-era session and a multi round-trip call live on the instance that started
 * them; the other forwards their requests there, streams included, and answers as the protocol
 * expects once the owner is gone. With login: the SDK client signs in through the front (each
 * step of the flow may land on either instance); a sign-in on A is used on B; a refresh on A
 * and then on B; an owner revocation run with B's config is refused on A's next request.
 */
import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";
import { roundRobin } from "../helpers/round-robin.ts";
import {
  connectWithLogin,
  fakeGitHub,
  LOGIN_ENV,
  loginConfig,
  TestProvider,
} from "../helpers/oauth.ts";
import { mcpInitialize, refresh, signInForTokens, type Tokens } from "../helpers/oauth-flows.ts";
import { probe } from "../helpers/oauth-tokens.ts";
import { cliEnv, runNarrow, runNarrowInProcess, tableRows } from "../helpers/cli.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

const SECRET = "peer-secret-for-tests-0123456789abcdef";
const ENV = {
  PROXY_PEER_SECRET: SECRET,
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  HOME: Deno.env.get("HOME") ?? "/tmp",
};
const SESSION_PROTOCOL = "2025-06-18";
const MODERN = "2026-07-28";

let databases = 0;

/**
 * Two instances on a fresh place of `pg` (its own role and schema, `TestPostgres.place`), each
 * with its internal listener. Instances are separate processes (a crash, a stop that ends every
 * connection): each runs as one here.
 */
async function twoInstances(pg: TestPostgres, config: Record<string, unknown> = {}) {
  const env = { ...ENV, DATABASE_URL: await pg.place(`instances_${++databases}`) };
  const start = () =>
    startProxy({
      store: { url: "${DATABASE_URL}" },
      mcpServers: { fx: fixtureServer() },
      instances: { listen: "127.0.0.1:0", secret: "${PROXY_PEER_SECRET}" },
      ...config,
    }, { env, process: true });
  const a = await start();
  const b = await start().catch(async (error) => {
    await a.stop();
    throw error;
  });
  return { a, b, start };
}

/** The instance id and the peers an instance's `/healthz` details show. */
async function health(proxy: ProxyProcess) {
  const res = await fetch(`${proxy.admin}/healthz`);
  const body = await res.json();
  return body.instances as {
    id: string;
    internal: string;
    peers: { id: string; alive: boolean }[];
  };
}

function rpc(id: number, method: string, params: Record<string, unknown> = {}) {
  return JSON.stringify({ jsonrpc: "2.0", id, method, params });
}

const JSON_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

/** Opens a 2025-era session directly on `origin`; returns its id. */
async function openSession(url: string): Promise<string> {
  const res = await fetch(url, {
    method: "POST",
    headers: JSON_HEADERS,
    body: rpc(0, "initialize", {
      protocolVersion: SESSION_PROTOCOL,
      capabilities: {},
      clientInfo: { name: "raw", version: "1" },
    }),
  });
  assert.equal(res.status, 200);
  await res.body?.cancel();
  const id = res.headers.get("mcp-session-id")!;
  const done = await fetch(url, {
    method: "POST",
    headers: { ...JSON_HEADERS, "mcp-session-id": id, "mcp-protocol-version": SESSION_PROTOCOL },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  assert.equal(done.status, 202);
  await done.body?.cancel();
  return id;
}

/** A tool call in session `id` on `url`: the status and the tool's text (or the error). */
async function callIn(url: string, id: string, name: string, args = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      "mcp-session-id": id,
      "mcp-protocol-version": SESSION_PROTOCOL,
    },
    body: rpc(7, "tools/call", { name, arguments: args }),
  });
  const body = await res.json();
  return { status: res.status, text: body.result ? text(body.result) : JSON.stringify(body) };
}

/** a 2025 session opened on A is used through B, its GET stream too; A crashes at its end */
async function sessionThroughB(a: ProxyProcess, b: ProxyProcess) {
  const [ha, hb] = [await health(a), await health(b)];
  assert.notEqual(ha.id, hb.id);
  assert.deepEqual(hb.peers.map((p) => [p.id, p.alive]), [[ha.id, true]]);

  const session = await openSession(a.url("fx"));
  const onA = await callIn(a.url("fx"), session, "pid");
  const viaB = await callIn(b.url("fx"), session, "pid");
  assert.equal(viaB.status, 200, viaB.text);
  assert.equal(viaB.text, onA.text, "the same child answers: the one on A");
  // The access line is written after the answer: wait for it.
  await b.waitForLog(new RegExp(`route=mcp status=200 .*instance=${ha.id}`));

  // The standalone GET stream opened through B carries what A's child sends.
  const stream = await fetch(b.url("fx"), {
    headers: {
      accept: "text/event-stream",
      "mcp-session-id": session,
      "mcp-protocol-version": SESSION_PROTOCOL,
    },
  });
  assert.equal(stream.status, 200);
  assert.equal(stream.headers.get("content-type"), "text/event-stream");
  const toggled = await callIn(b.url("fx"), session, "toggle");
  assert.equal(toggled.status, 200, toggled.text);
  const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("notifications/tools/list_changed")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  assert.match(seen, /notifications\/tools\/list_changed/);
  await reader.cancel();

  // A session id whose owner tag was altered is nobody's: 404 on B, never forwarded.
  const [random, owner, mac] = session.split(".");
  const forged = `${random}.${owner}.${mac.slice(0, -2)}AA`;
  assert.equal((await callIn(b.url("fx"), forged, "pid")).status, 404);
  const directly = await fetch(ha.internal + "/mcp/fx", {
    method: "POST",
    headers: { ...JSON_HEADERS, "mcp-session-id": session },
    body: rpc(1, "tools/list"),
  });
  assert.equal(directly.status, 403, "the internal listener wants an instance's signature");
  await directly.body?.cancel();

  // A crashes (no goodbye, its heartbeat still fresh): unreachable, so its session is gone.
  await a.stop("SIGKILL");
  const afterCrash = await callIn(b.url("fx"), session, "pid");
  assert.equal(afterCrash.status, 404, afterCrash.text);
  await b.waitForLog(/cannot reach the instance owning a request/);
}

/** a legacy /sse stream on A takes its messages through B */
async function legacyThroughB(a: ProxyProcess, b: ProxyProcess) {
  const stream = await fetch(`${a.origin}/sse/fx`, { headers: { accept: "text/event-stream" } });
  assert.equal(stream.status, 200);
  const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const until = async (pattern: RegExp) => {
    while (!pattern.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    return pattern.exec(seen);
  };
  const endpoint = (await until(/event: endpoint\ndata: (\S+)\n/))![1];
  const post = (body: string) =>
    fetch(b.origin + endpoint, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
  const init = await post(rpc(1, "initialize", {
    protocolVersion: "2024-11-05",
    capabilities: {},
    clientInfo: { name: "legacy", version: "1" },
  }));
  assert.equal(init.status, 202);
  await init.body?.cancel();
  await until(/"id":1\b/);
  const listed = await post(rpc(2, "tools/list"));
  assert.equal(listed.status, 202);
  await listed.body?.cancel();
  assert.match((await until(/data: .*"id":2\b.*\n/))![0], /"name":"echo"/);
  await reader.cancel();
}

/**
 * the SDK client through a round-robin front; A stops, the client re-initializes on B. Returns
 * the instance still running.
 */
async function frontAndRestart(a: ProxyProcess, b: ProxyProcess): Promise<ProxyProcess> {
  const front = roundRobin([a.origin, b.origin]);
  try {
    const url = `${front.origin}/mcp/fx`;
    const client = await connect(url, { answer: true });
    const owner = client.sessionId()!.split(".")[1];
    const pids = new Set<string>();
    for (let i = 0; i < 4; i++) {
      pids.add(text(await client.client.callTool({ name: "pid", arguments: {} })));
    }
    assert.equal(pids.size, 1, "every call reaches the session's child");
    // Server-to-client requests on a forwarded POST stream.
    const sampled = await client.client.callTool({ name: "elicit", arguments: { message: "?" } });
    assert.equal(text(sampled), "elicited: accept test-client says yes");
    const upstreams = new Set(front.served.map((s) => s.upstream));
    assert.equal(upstreams.size, 2, "the front used both instances");

    // The owner goes away (its connector with it): its sessions are gone, B serves new ones.
    const [ha, hb] = [await health(a), await health(b)];
    const [gone, survivor] = owner === ha.id ? [a, b] : [b, a];
    assert.ok(owner === ha.id || owner === hb.id);
    await gone.stop();
    front.use([survivor.origin]);
    await assert.rejects(
      () => client.client.callTool({ name: "pid", arguments: {} }),
      (error) => error instanceof StreamableHTTPError && error.code === 404,
    );
    await client.close().catch(() => {});
    const again = await connect(url);
    assert.match(
      text(await again.client.callTool({ name: "echo", arguments: { text: "hi" } })),
      /hi/,
    );
    assert.notEqual(again.sessionId()!.split(".")[1], owner);
    await again.close();
    return survivor;
  } finally {
    await front.close();
  }
}

/** an MRTR round started on A is retried on B; A gone → the state has expired */
async function mrtrThroughB(a: ProxyProcess, b: ProxyProcess) {
  const elicit = (id: number, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: {
        name: "elicit",
        arguments: { message: "q?" },
        ...extra,
        _meta: {
          "io.modelcontextprotocol/protocolVersion": MODERN,
          "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": { elicitation: {} },
        },
      },
    });
  const post = async (url: string, body: string) => {
    const res = await fetch(url, {
      method: "POST",
      headers: {
        ...JSON_HEADERS,
        accept: "application/json",
        "mcp-protocol-version": MODERN,
        "mcp-method": "tools/call",
        "mcp-name": "elicit",
      },
      body,
    });
    return await res.json();
  };
  const answer = { "input-1": { action: "accept", content: { answer: "from B" } } };
  const first = await post(a.url("fx"), elicit(1));
  assert.equal(first.result.resultType, "input_required");
  const done = await post(
    b.url("fx"),
    elicit(2, { inputResponses: answer, requestState: first.result.requestState }),
  );
  assert.equal(text(done.result), "elicited: accept from B", JSON.stringify(done));

  // Another round on A; A stops before the retry: B answers the state has expired.
  const second = await post(a.url("fx"), elicit(3));
  await a.stop();
  const late = await post(
    b.url("fx"),
    elicit(4, { inputResponses: answer, requestState: second.result.requestState }),
  );
  assert.equal(late.error?.code, -32602, JSON.stringify(late));
  assert.equal(late.error?.data?.requestState, "expired");
  // Sessionless requests are served by whichever instance gets them.
  const fresh = await post(b.url("fx"), elicit(5));
  assert.equal(fresh.result.resultType, "input_required");
}

/** The instance's own address (its printed URLs are the public one, the front's). */
async function direct(proxy: ProxyProcess): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(proxy.configPath));
  return `http://${config.listen}`;
}

/** Login across the instances; both start together on the empty database. */
async function loginAcrossInstances(pg: TestPostgres, t: Deno.TestContext) {
  const gh = await fakeGitHub();
  const front = roundRobin([]);
  const env = {
    ...LOGIN_ENV,
    PROXY_PEER_SECRET: SECRET,
    DATABASE_URL: await pg.place(`instances_${++databases}`),
  };
  const start = () =>
    startProxy({
      ...loginConfig(gh),
      publicUrl: front.origin,
      store: { url: "${DATABASE_URL}" },
      instances: { listen: "127.0.0.1:0", secret: "${PROXY_PEER_SECRET}" },
      mcpServers: { fx: fixtureServer() },
    }, { env, process: true });
  const started = await Promise.allSettled([start(), start()]);
  const proxies = started.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
  try {
    if (proxies.length < 2) {
      throw (started.find((r) => r.status === "rejected") as PromiseRejectedResult).reason;
    }
    const [a, b] = proxies;
    const [originA, originB] = [await direct(a), await direct(b)];
    front.use([originA, originB]);
    await signInThroughFront(t, front, [originA, originB]);
    await tokensAcrossInstances(t, { a, b, originA, originB, front }, env.DATABASE_URL);
  } finally {
    await Promise.all(proxies.map((p) => p.stop()));
    await front.close();
    await gh.close();
  }
}

async function signInThroughFront(
  t: Deno.TestContext,
  front: ReturnType<typeof roundRobin>,
  origins: string[],
) {
  await t.step("the SDK client signs in and calls through the front", async () => {
    const { client } = await connectWithLogin(`${front.origin}/mcp/fx`, new TestProvider());
    const pids = new Set<string>();
    for (let i = 0; i < 4; i++) {
      pids.add(text(await client.callTool({ name: "pid", arguments: {} })));
    }
    assert.equal(pids.size, 1, "one session, one child, wherever the calls landed");
    await client.close();
    const used = new Set(front.served.map((s) => s.upstream));
    assert.deepEqual([...used].sort(), [...origins].sort());
  });
}

async function tokensAcrossInstances(
  t: Deno.TestContext,
  { a, b, originA, originB, front }: {
    a: ProxyProcess;
    b: ProxyProcess;
    originA: string;
    originB: string;
    front: ReturnType<typeof roundRobin>;
  },
  databaseUrl: string,
) {
  let tokens: Tokens;
  let clientId: string;
  await t.step("signed in through A, the token works on B", async () => {
    // The browser uses the public URL (the consent form checks its origin); A serves it all.
    front.use([originA]);
    const flow = await signInForTokens({ ...a, origin: front.origin });
    front.use([originA, originB]);
    tokens = flow.tokens;
    clientId = flow.clientId;
    const onB = await mcpInitialize(`${originB}/mcp/fx`, tokens.access_token);
    assert.equal(onB.status, 200, onB.body);
  });
  await t.step("refreshed on A, then on B", async () => {
    const first = await refresh(originA, { clientId }, tokens.refresh_token);
    assert.equal(first.status, 200);
    const fromA = await first.json();
    const second = await refresh(originB, { clientId }, fromA.refresh_token);
    assert.equal(second.status, 200);
    tokens = await second.json();
    assert.equal((await mcpInitialize(`${originA}/mcp/fx`, tokens.access_token)).status, 200);
  });
  await t.step("revoked by the owner with B's config: refused on A's next request", async () => {
    // A has checked (and cached) the token just now.
    assert.equal((await probe(`${originA}/mcp/fx`, `Bearer ${tokens.access_token}`)).status, 200);
    const cli = { env: cliEnv({ DATABASE_URL: databaseUrl }), cwd: b.dir };
    // Listed in this process; revoked as a real process with the derived flags.
    const list = await runNarrowInProcess("grants", b.configPath, ["list"], cli);
    assert.equal(list.code, 0, list.stderr);
    const { headers, rows } = tableRows(list.stdout);
    const ids = rows.filter((r) => r[headers.indexOf("CLIENT")].includes(clientId))
      .map((r) => r[headers.indexOf("GRANT ID")]);
    assert.equal(ids.length, 1, list.stdout);
    const revoked = await runNarrow("grants", b.configPath, ["revoke", ids[0]], cli);
    assert.equal(revoked.code, 0, revoked.stderr);
    const after = await probe(`${originA}/mcp/fx`, `Bearer ${tokens.access_token}`);
    assert.equal(after.status, 401);
  });
}

/**
 * Each pair of instances serves the tests that can follow each other: the test that ends an
 * instance comes last on it (or hands the instance left over to the next test).
 */
Deno.test("several instances on one PostgreSQL database", async (t) => {
  const pg = await startPostgres();
  try {
    await t.step("a pair: legacy SSE, then a 2025 session", async (t) => {
      const { a, b } = await twoInstances(pg);
      try {
        await t.step(
          "a legacy /sse stream on A takes its messages through B",
          () => legacyThroughB(a, b),
        );
        // Last: A crashes in it.
        await t.step(
          "a 2025 session opened on A is used through B, its GET stream too",
          () => sessionThroughB(a, b),
        );
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });
    await t.step("a pair: the SDK client through a front, then MRTR", async (t) => {
      const { a, b, start } = await twoInstances(pg);
      const running = [a, b];
      try {
        let survivor: ProxyProcess | undefined;
        await t.step(
          "the SDK client through a round-robin front; A stops, the client re-initializes on B",
          async () => {
            survivor = await frontAndRestart(a, b);
          },
        );
        // The instance left over and a new one on the same database.
        await t.step(
          "an MRTR round started on A is retried on B; A gone → the state has expired",
          async () => {
            assert.ok(survivor, "the previous step left an instance running");
            const c = await start();
            running.push(c);
            await mrtrThroughB(survivor, c);
          },
        );
      } finally {
        await Promise.all(running.map((p) => p.stop()));
      }
    });
    await t.step("with login", (t) => loginAcrossInstances(pg, t));
  } finally {
    await pg.stop();
  }
});
