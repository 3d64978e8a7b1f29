/**
 * `subscriptions/listen` on the merged endpoint `/mcp` for MCP 2026-07-28 clients, in front of
 * two conformance fixture children whose resource URIs collide: list changes from each server,
 * the listen filter, resource updates under the `mcp-merged://` form and dropped once a filter
 * hides the resource, a child crash and restart, the per-server `allow`, and the close releasing
 * every child subscription and attachment.
 */
import assert from "node:assert/strict";
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import {
  CONFORMANCE_FIXTURE,
  crashingServer,
  type ProxyProcess,
  startProxy,
} from "../helpers/proxy.ts";
import { type Frame, openListen } from "../helpers/rpc.ts";
import { eventually } from "../helpers/procs.ts";
import {
  countLogLines,
  reloadConfig,
  signInForTokens,
  waitForNewLog,
} from "../helpers/oauth-flows.ts";
import { ALICE, BOB, fakeGitHub, LOGIN_ENV, loginConfig } from "../helpers/oauth.ts";

const MODERN = "2026-07-28";
const WATCHED = "test://watched-resource";
const _meta = {
  "io.modelcontextprotocol/protocolVersion": MODERN,
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};

function conformance(extra: Record<string, unknown> = {}) {
  return {
    command: "deno",
    args: ["run", "--no-prompt", CONFORMANCE_FIXTURE],
    ...extra,
  };
}

function headers(method: string, token?: string, name?: string): Record<string, string> {
  const out: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": MODERN,
    "mcp-method": method,
  };
  if (token) out.authorization = `Bearer ${token}`;
  if (name) out["mcp-name"] = name;
  return out;
}

let nextId = 1;

/** Calls a tool of `/mcp` in one 2026-07-28 POST; the answer's text. */
async function tool(proxy: ProxyProcess, name: string, args = {}, token?: string) {
  const res = await fetch(`${proxy.origin}/mcp`, {
    method: "POST",
    headers: headers("tools/call", token, name),
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: nextId++,
      method: "tools/call",
      params: { name, arguments: args, _meta },
    }),
  });
  return JSON.stringify(await res.json());
}

/** Opens a listen stream on `/mcp`: its frames one at a time, and how to close it. */
function listen(proxy: ProxyProcess, notifications: Record<string, unknown>, token?: string) {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return openListen(`${proxy.origin}/mcp`, notifications, auth, "watch");
}

/** Reads frames until one is `method`, skipping list changes (a restart sends one or two). */
async function nextOf(next: () => Promise<Frame>) {
  for (;;) {
    const frame = await next();
    if (!frame.method?.endsWith("/list_changed")) return frame;
  }
}

/**
 * Waits until the sessions (merged parts included) attached to each server's children, from
 * /healthz, are `expected`.
 */
async function attached(proxy: ProxyProcess, expected: Record<string, number>): Promise<void> {
  let seen: Record<string, number> = {};
  for (let i = 0; i < 200; i++) {
    const health = await (await fetch(`${proxy.admin}/healthz`)).json();
    seen = {};
    for (const [name, server] of Object.entries(health.servers)) {
      const children = (server as { children: { sessions: number }[] }).children;
      seen[name] = children.reduce((n, c) => n + c.sessions, 0);
    }
    if (JSON.stringify(seen) === JSON.stringify(expected)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(seen, expected, "sessions attached to the children");
}

const subscribedLines = (proxy: ProxyProcess, server: string, what = "subscribed to") =>
  proxy.logs().split("\n").filter((l) =>
    l.includes(`child="${server}#`) && l.includes(`text="fixture: ${what} ${WATCHED}"`)
  ).length;

Deno.test("merged listen (2026-07-28): list changes, filter, merged URIs, crash, close", async () => {
  const proxy = await startProxy({
    mcpServers: { a: conformance(), b: conformance({ restartDelay: "100ms" }) },
    merged: { enabled: true },
  });
  try {
    // The SDK v2 client's listen: a list change from each server reaches it.
    const client = new ModernClient({ name: "sdk-v2", version: "2.4.0" }, {
      versionNegotiation: { mode: { pin: MODERN } },
    });
    let changes = 0;
    client.setNotificationHandler("notifications/tools/list_changed", () => void changes++);
    await client.connect(new ModernTransport(new URL(`${proxy.origin}/mcp`)));
    const subscription = await client.listen({ toolsListChanged: true });
    assert.deepEqual(subscription.honoredFilter, { toolsListChanged: true });
    await client.callTool({ name: "a__test_trigger_tool_change", arguments: {} });
    await eventually(() => changes === 1, 10_000, "a's tools/list_changed");
    await client.callTool({ name: "b__test_trigger_tool_change", arguments: {} });
    await eventually(() => changes === 2, 10_000, "b's tools/list_changed");
    await attached(proxy, { a: 1, b: 1 });
    // The SDK closes it with a notifications/cancelled naming the listen request.
    await subscription.close();
    await attached(proxy, { a: 0, b: 0 });

    // Raw: the colliding URI of each server, and 200 no server has; those cost each child one
    // read of its resource list, done before the acknowledgement.
    const listed = (server: string) =>
      proxy.logs().split("\n").filter((l) =>
        l.includes(`child="${server}#`) && l.includes('text="fixture: listed resources"')
      ).length;
    const listedBefore = [listed("a"), listed("b")];
    const nowhere = Array.from({ length: 200 }, (_, i) => `test://nowhere/${i}`);
    const s = await listen(proxy, {
      toolsListChanged: true,
      resourceSubscriptions: [`mcp-merged://a/${WATCHED}`, `mcp-merged://b/${WATCHED}`, ...nowhere],
    });
    const ack = await s.next();
    assert.equal(ack.method, "notifications/subscriptions/acknowledged");
    assert.deepEqual(ack.params.notifications, {
      toolsListChanged: true,
      resourceSubscriptions: [`mcp-merged://a/${WATCHED}`, `mcp-merged://b/${WATCHED}`],
    });
    await eventually(() => listed("a") > listedBefore[0] && listed("b") > listedBefore[1]);
    assert.deepEqual([listed("a"), listed("b")], listedBefore.map((n) => n + 1));
    await eventually(() => subscribedLines(proxy, "a") === 1 && subscribedLines(proxy, "b") === 1);
    // The filter: a prompt change is not asked for; the tool change after it is the next frame.
    assert.match(await tool(proxy, "a__test_trigger_prompt_change"), /prompt list changed/);
    assert.match(await tool(proxy, "b__test_trigger_tool_change"), /tool list changed/);
    assert.equal((await s.next()).method, "notifications/tools/list_changed");
    // Updates name the resource as the client did.
    assert.match(await tool(proxy, "b__test_touch_resource", { uri: WATCHED }), /touched/);
    const updated = await s.next();
    assert.equal(updated.method, "notifications/resources/updated");
    assert.deepEqual(updated.params, {
      uri: `mcp-merged://b/${WATCHED}`,
      _meta: { "io.modelcontextprotocol/subscriptionId": "watch" },
    });

    // b's child crashes: a list change; a keeps delivering; b's new child is subscribed again.
    const pid = Number(/child started child="b#\d+" pid=(\d+)/.exec(proxy.logs())![1]);
    Deno.kill(pid, "SIGKILL");
    assert.equal((await s.next()).method, "notifications/tools/list_changed");
    assert.match(await tool(proxy, "a__test_touch_resource", { uri: WATCHED }), /touched/);
    assert.equal((await nextOf(s.next)).params.uri, `mcp-merged://a/${WATCHED}`);
    await eventually(() => subscribedLines(proxy, "b") === 2, 20_000, "b's new child subscribed");
    assert.match(await tool(proxy, "b__test_touch_resource", { uri: WATCHED }), /touched/);
    assert.equal((await nextOf(s.next)).params.uri, `mcp-merged://b/${WATCHED}`);

    // A filter that hides the resource at b: b's update is dropped, a's still arrives.
    await reloadConfig(proxy, (c) => {
      const servers = c.mcpServers as Record<string, Record<string, unknown>>;
      servers.b.resources = { deny: [WATCHED] };
    });
    await waitForNewLog(proxy, /filters reloaded/, 0);
    assert.match(await tool(proxy, "b__test_touch_resource", { uri: WATCHED }), /touched/);
    assert.match(await tool(proxy, "a__test_touch_resource", { uri: WATCHED }), /touched/);
    assert.equal((await nextOf(s.next)).params.uri, `mcp-merged://a/${WATCHED}`);

    // Closing the stream unsubscribes both children and detaches from them.
    await reloadConfig(proxy, (c) => {
      delete (c.mcpServers as Record<string, Record<string, unknown>>).b.resources;
    });
    await waitForNewLog(proxy, /filters reloaded/, 1);
    await attached(proxy, { a: 1, b: 1 });
    s.close();
    await eventually(() =>
      subscribedLines(proxy, "a", "unsubscribed from") === 1 &&
      subscribedLines(proxy, "b", "unsubscribed from") === 1
    );
    await attached(proxy, { a: 0, b: 0 });
    await client.close();
  } finally {
    await proxy.stop();
  }
});

/**
 * Two shared conformance servers behind login on `/mcp`, `notes` only for Alice; Alice's and
 * Bob's tokens for `/mcp`.
 */
async function aliceAndBob() {
  const gh = await fakeGitHub();
  const proxy = await startProxy({
    ...loginConfig(gh, { users: [ALICE.id, BOB.id] }),
    mcpServers: {
      files: conformance({ mode: "shared" }),
      notes: conformance({ mode: "shared", allow: { users: [ALICE.login] } }),
    },
    merged: { enabled: true },
  }, { env: LOGIN_ENV });
  const resource = `${proxy.origin}/mcp`;
  try {
    const alice = (await signInForTokens(proxy, { resource })).tokens.access_token;
    gh.setCurrentUser(BOB.id);
    const bob = (await signInForTokens(proxy, { resource })).tokens.access_token;
    return { gh, proxy, alice, bob };
  } catch (error) {
    await proxy.stop();
    await gh.close();
    throw error;
  }
}

/** Sets who may use `notes` by SIGHUP and waits until the proxy applied it. */
async function notesFor(proxy: ProxyProcess, users: string[]) {
  const reloads = countLogLines(proxy, /config reloaded/);
  await reloadConfig(proxy, (c) => {
    const servers = c.mcpServers as Record<string, Record<string, unknown>>;
    servers.notes.allow = { users };
  });
  await waitForNewLog(proxy, /config reloaded/, reloads);
}

// One proxy and one sign-in each for both tests; the reload test comes last.
Deno.test("merged listen (2026-07-28) with login", async (t) => {
  const { gh, proxy, alice, bob } = await aliceAndBob();
  try {
    await t.step(
      "a server the person may not use sends them nothing",
      () => barredFromTheStart(proxy, alice, bob),
    );
    await t.step(
      "a reload that bars a server silences it on open streams",
      () => barredByReload(proxy, alice, bob),
    );
  } finally {
    await proxy.stop();
    await gh.close();
  }
});

async function barredFromTheStart(proxy: ProxyProcess, alice: string, bob: string) {
  const streams: { close(): void }[] = [];
  try {
    const inNotes = `mcp-merged://notes/${WATCHED}`;

    const bobs = await listen(proxy, {
      toolsListChanged: true,
      resourceSubscriptions: [WATCHED, inNotes],
    }, bob);
    streams.push(bobs);
    // Bob's endpoint has only files: its URI is his unprefixed, the notes one is unknown.
    assert.deepEqual((await bobs.next()).params.notifications, {
      toolsListChanged: true,
      resourceSubscriptions: [WATCHED],
    });
    const alices = await listen(
      proxy,
      { toolsListChanged: true, resourceSubscriptions: [inNotes] },
      alice,
    );
    streams.push(alices);
    await alices.next();

    // notes changes: Alice hears of it; it is delivered to every listener of the child at once.
    assert.match(await tool(proxy, "notes__test_trigger_tool_change", {}, alice), /changed/);
    assert.equal((await alices.next()).method, "notifications/tools/list_changed");
    assert.match(
      await tool(proxy, "notes__test_touch_resource", { uri: WATCHED }, alice),
      /touched/,
    );
    assert.equal((await alices.next()).params.uri, inNotes);
    // Bob's next frame is files' update, so nothing of notes came before it.
    assert.match(
      await tool(proxy, "files__test_touch_resource", { uri: WATCHED }, alice),
      /touched/,
    );
    const first = await bobs.next();
    assert.equal(first.method, "notifications/resources/updated");
    assert.equal(first.params.uri, WATCHED);
  } finally {
    for (const s of streams) s.close();
  }
}

async function barredByReload(proxy: ProxyProcess, alice: string, bob: string) {
  // The previous test's listeners are gone (each child unsubscribed), and Bob may use notes.
  for (const server of ["files", "notes"]) {
    await eventually(
      () => subscribedLines(proxy, server) === subscribedLines(proxy, server, "unsubscribed from"),
      10_000,
      `${server}'s child unsubscribed`,
    );
  }
  const before = { files: subscribedLines(proxy, "files"), notes: subscribedLines(proxy, "notes") };
  await notesFor(proxy, [ALICE.login, BOB.login]);
  let stream: { close(): void } | undefined;
  try {
    const inFiles = `mcp-merged://files/${WATCHED}`;
    const inNotes = `mcp-merged://notes/${WATCHED}`;
    const bobs = await listen(proxy, {
      toolsListChanged: true,
      resourceSubscriptions: [inFiles, inNotes],
    }, bob);
    stream = bobs;
    assert.deepEqual((await bobs.next()).params.notifications, {
      toolsListChanged: true,
      resourceSubscriptions: [inFiles, inNotes],
    });
    await eventually(() => subscribedLines(proxy, "files") === before.files + 1);
    await eventually(() => subscribedLines(proxy, "notes") === before.notes + 1);

    // Bob may no longer use notes: its items leave his lists, and nothing of it reaches him.
    await reloadConfig(proxy, (c) => {
      const servers = c.mcpServers as Record<string, Record<string, unknown>>;
      servers.notes.allow = { users: [ALICE.login] };
    });
    assert.equal((await bobs.next()).method, "notifications/tools/list_changed");
    assert.match(
      await tool(proxy, "notes__test_touch_resource", { uri: WATCHED }, alice),
      /touched/,
    );
    assert.match(
      await tool(proxy, "files__test_touch_resource", { uri: WATCHED }, alice),
      /touched/,
    );
    assert.equal((await nextOf(bobs.next)).params.uri, inFiles);
  } finally {
    stream?.close();
  }
}

Deno.test("merged listen (2026-07-28): a server down when the stream opened joins once it starts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-merged-listen-" });
  const marker = `${dir}/crash`;
  await Deno.writeTextFile(marker, "");
  const proxy = await startProxy({
    mcpServers: { a: conformance(), b: crashingServer(marker, { restartDelay: "100ms" }) },
    merged: { enabled: true },
  }, { dir });
  let stream: { close(): void } | undefined;
  try {
    const s = await listen(proxy, { toolsListChanged: true });
    stream = s;
    assert.deepEqual((await s.next()).params.notifications, { toolsListChanged: true });
    await Deno.remove(marker);
    // Another request starts b's child (the 2026 lane starts it for its own list).
    for (let tries = 0; !(await tool(proxy, "b__echo", { text: "up" })).includes('"up"'); tries++) {
      assert.ok(tries < 100, "b never started");
      await new Promise((r) => setTimeout(r, 100));
    }
    // The stream hears of b's items, and of b's own list changes from then on.
    assert.equal((await s.next()).method, "notifications/tools/list_changed");
    assert.match(await tool(proxy, "b__toggle"), /extra tool now on/);
    assert.equal((await s.next()).method, "notifications/tools/list_changed");
  } finally {
    stream?.close();
    await proxy.stop();
  }
});
