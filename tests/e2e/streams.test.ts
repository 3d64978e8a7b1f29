/**
 * SSE streams under clients that do not read, and the bounded replay of sent events: a stream
 * queueing more than 2 × limits.maxMessageOut unread is ended with its session while the child
 * serves on; events of a stream delivered to the end are not kept; limits.resumeBuffer bounds
 * what all sessions keep for Last-Event-ID.
 *
 * One proxy serves them all (each test with sessions of its own): `fx` a per-user child, `queue`
 * one that takes a call at a time.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { connect, initializeRequest, text } from "../helpers/client.ts";
import { readUntil, SseReader } from "../helpers/sse.ts";

const encoder = new TextEncoder();
const ACCEPT_BOTH = "application/json, text/event-stream";

function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: ACCEPT_BOTH, ...headers },
    body: JSON.stringify(body),
  });
}

function call(id: number, name: string, args: Record<string, unknown> = {}, meta?: unknown) {
  return {
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
  };
}

/** A 2025-11-25 session; returns the headers that address it. */
async function session(url: string): Promise<Record<string, string>> {
  const res = await post(url, initializeRequest("2025-11-25", "raw", 0));
  assert.equal(res.status, 200);
  await res.body?.cancel();
  return {
    "mcp-session-id": res.headers.get("mcp-session-id")!,
    "mcp-protocol-version": "2025-11-25",
  };
}

/** A tools/call answered as an SSE stream: three progress events, then the result. */
function progressStream(url: string, session: Record<string, string>): Promise<Response> {
  return post(url, call(1, "progress", { steps: 3, delayMs: 1 }, { progressToken: 1 }), {
    ...session,
    accept: "text/event-stream",
  });
}

/**
 * Resumes `session` after `lastEventId` and has `other` make the child announce a tool-list
 * change: the first event on the resumed stream must be that announcement, not a replay.
 */
async function expectNothingReplayed(
  url: string,
  session: Record<string, string>,
  other: Record<string, string>,
  lastEventId: string,
) {
  const res = await fetch(url, {
    headers: { ...session, accept: "text/event-stream", "last-event-id": lastEventId },
  });
  assert.equal(res.status, 200);
  const resumed = new SseReader(res.body!);
  const toggle = await post(url, call(99, "toggle"), { ...other, accept: "application/json" });
  assert.equal(toggle.status, 200);
  await toggle.body?.cancel();
  const first = await resumed.next();
  assert.equal(JSON.parse(first!.data).method, "notifications/tools/list_changed", first?.data);
  await resumed.cancel();
}

Deno.test("SSE streams and replay", async (t) => {
  const proxy = await startProxy({
    mcpServers: { fx: fixtureServer(), queue: fixtureServer({ maxInFlight: 1 }) },
    limits: { maxMessageOut: "1MiB", resumeBuffer: "64KiB" },
  });
  try {
    // First: it counts on the budget being unused.
    await t.step(
      "limits.resumeBuffer bounds the events kept across sessions, oldest first",
      () => resumeBufferBounded(proxy),
    );
    await t.step("a stream delivered to the end is not kept for replay", () => notKept(proxy));
    await t.step(
      "a session that ends answers its calls and never sends its queued ones to the child",
      () => endedSession(proxy),
    );
    await t.step(
      "a client that never reads its stream loses it and its session; the child serves on",
      () => neverRead(proxy),
    );
  } finally {
    await proxy.stop();
  }
});

async function neverRead(proxy: ProxyProcess) {
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(new URL(proxy.origin).port),
  });
  try {
    const other = await connect(proxy.url("fx"));
    const pid = text(await other.client.callTool({ name: "pid", arguments: {} }));
    // A raw connection that reads the endpoint event and then nothing more.
    await conn.write(encoder.encode(
      `GET /sse/fx HTTP/1.1\r\nHost: ${new URL(proxy.origin).host}\r\n` +
        `Accept: text/event-stream\r\n\r\n`,
    ));
    const endpoint = `${proxy.origin}${(await readUntil(conn, /data: (\S+)\n\n/))[1]}`;
    const init = await post(endpoint, initializeRequest("2024-11-05", "stall", 0));
    assert.equal(init.status, 202);
    await init.body?.cancel();
    // Answers of 900 KB each until the proxy gives up on the stream (2 MiB queued unread, once
    // the socket buffers are full), or the session is gone.
    let status = 202;
    for (let i = 1; i <= 200 && status === 202 && !overflowLogged(proxy); i++) {
      const res = await post(endpoint, call(i, "big", { bytes: 900_000 }));
      status = res.status;
      await res.body?.cancel();
    }
    const line = await proxy.waitForLog(/SSE stream over its queue limit/);
    assert.match(line, /^\S+ warn /);
    assert.match(line, /session=\S{8} server=fx user=anonymous queued=\d+ limit=2097152/);
    assert.equal(countLines(proxy, /SSE stream over its queue limit/), 1);
    await proxy.waitForLog(/session closed .*reason="client not reading its stream"/);
    const after = await post(endpoint, call(1000, "echo", { text: "x" }));
    assert.equal(after.status, 404);
    await after.body?.cancel();
    // The child was not restarted: the other session reaches the same process.
    assert.equal(text(await other.client.callTool({ name: "pid", arguments: {} })), pid);
    await other.close();
  } finally {
    conn.close();
  }
}

async function notKept(proxy: ProxyProcess) {
  const url = proxy.url("fx");
  const a = await session(url);
  const b = await session(url);
  const res = await progressStream(url, a);
  const events = (await res.text()).trim().split("\n\n");
  const last = /^id: (\d+)_(\d+)$/m.exec(events.at(-1)!)!;
  assert.match(events.at(-1)!, /"done 3"/);
  // Resuming the finished stream from its start replays nothing.
  await expectNothingReplayed(url, a, b, `${last[1]}_0`);
}

async function resumeBufferBounded(proxy: ProxyProcess) {
  const url = proxy.url("fx");
  const a = await session(url);
  const b = await session(url);
  // a's stream drops after its first event; the rest is kept for a resume.
  const res = await progressStream(url, a);
  const stream = new SseReader(res.body!);
  const priming = (await stream.next())!;
  await stream.cancel();
  await proxy.waitForLog(/ audit server=fx tool=progress\b/); // the call completed
  // b's 100 KB answer needs more than the whole budget: a's kept events go first.
  const big = await post(url, call(2, "big", { bytes: 100_000 }), {
    ...b,
    accept: "text/event-stream",
  });
  assert.match(await big.text(), /x{1000}/);
  await expectNothingReplayed(url, a, b, priming.id!);
}

async function endedSession(proxy: ProxyProcess) {
  const url = proxy.url("queue");
  const init = await post(url, initializeRequest("2025-03-26", "batch", 0));
  const x = { "mcp-session-id": init.headers.get("mcp-session-id")! };
  await init.body?.cancel();
  const y = await session(url);
  // One batch: the first call goes to the child, the other two wait for their turn.
  const batch = post(url, [1, 2, 3].map((id) => call(id, "slow", { ms: 3000 })), {
    ...x,
    accept: "application/json",
  });
  while (await inFlight(proxy) < 1) await new Promise((r) => setTimeout(r, 50));
  const del = await fetch(url, { method: "DELETE", headers: x });
  assert.equal(del.status, 204);
  // y's call is served next: x's waiting calls were dropped, not run first.
  const echo = await post(url, call(9, "echo", { text: "y" }), {
    ...y,
    accept: "application/json",
  });
  assert.equal((await echo.json()).result.content[0].text, "y");
  // Log lines come out in order: once echo's audit line is here, so is every earlier one.
  await proxy.waitForLog(/ audit server=queue tool=echo\b/);
  assert.equal(countLines(proxy, / audit server=queue tool=slow\b/), 1);
  const answers = await (await batch).json() as Array<{ id: number; error: { message: string } }>;
  // A batch's answers may come in any order (JSON-RPC 2.0 §6).
  answers.sort((a, b) => a.id - b.id);
  assert.deepEqual(answers.map((a) => [a.id, a.error.message]), [
    [1, "the session ended"],
    [2, "the session ended"],
    [3, "the session ended"],
  ]);
}

/** Requests in flight on the queue child, from the owner's health endpoint. */
async function inFlight(proxy: ProxyProcess): Promise<number> {
  const health = await (await fetch(`${proxy.admin}/healthz`)).json();
  return health.servers.queue.children[0]?.inFlight ?? 0;
}

function overflowLogged(proxy: ProxyProcess): boolean {
  return countLines(proxy, /SSE stream over its queue limit/) > 0;
}

function countLines(proxy: ProxyProcess, pattern: RegExp): number {
  return proxy.logs().split("\n").filter((l) => pattern.test(l)).length;
}
