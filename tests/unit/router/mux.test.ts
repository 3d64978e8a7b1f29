/**
 * The multiplexer's rules with a fake child (the `spawn` hook): id and progress-token rewriting,
 * where child notifications go (and where they do not when the recipient is ambiguous),
 * server-to-client requests that never reach another person, cancellation, timeouts, the
 * in-flight limit, detaching, child exits and the shutdown.
 */
import assert from "node:assert/strict";
import { type Completion, Mux, type MuxOptions } from "../../../lib/router/mux.ts";
import { fakeMuxOptions } from "../../helpers/mux.ts";
import { type FakeChild, type FakeChildOptions, fakeSpawner } from "../../helpers/fake-child.ts";
import { type Json, testReply, testSession } from "../../helpers/downstream.ts";
import { eventually } from "../../helpers/procs.ts";

async function setup(extra: Partial<MuxOptions> = {}, child: FakeChildOptions = {}) {
  const fake = fakeSpawner(child);
  const completions: Completion[] = [];
  const mux = new Mux(
    "github:1",
    fakeMuxOptions(fake.spawn, {
      onComplete: (completion) => completions.push(completion),
      ...extra,
    }),
  );
  await mux.supervisor.ready();
  return { mux, fake, completions, child: () => fake.last };
}

function call(id: unknown, name = "echo", extra: Json = {}): Json {
  return { jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: {}, ...extra } };
}

/** The last request the child received. */
function lastAt(child: FakeChild): Json {
  return child.traffic[child.traffic.length - 1];
}

Deno.test("ids: two sessions using the same id reach the child under distinct ids and each gets its own answer", async () => {
  const { mux, child } = await setup();
  const [a, b] = [testSession("a"), testSession("b")];
  const [ra, rb] = [testReply(), testReply()];
  mux.request(a, call(1, "echo", { arguments: { text: "from a" } }), ra);
  mux.request(b, call(1, "echo", { arguments: { text: "from b" } }), rb);
  const [toA, toB] = child().traffic;
  assert.equal(typeof toA.id, "number");
  assert.notEqual(toA.id, toB.id);
  child().emit({ id: toB.id, result: { content: "b's" } });
  child().emit({ id: toA.id, result: { content: "a's" } });
  assert.deepEqual(ra.final(), { jsonrpc: "2.0", id: 1, result: { content: "a's" } });
  assert.deepEqual(rb.final(), { jsonrpc: "2.0", id: 1, result: { content: "b's" } });
  child().emit({ id: toA.id, result: {} });
  child().emit({ id: "unknown", result: {} });
  assert.equal(mux.inFlight, 0, "a second or unknown answer is dropped");
  await mux.close();
});

Deno.test("progress: the token is rewritten for the child; progress reaches only the stream that asked, with its own token", async () => {
  const { mux, child } = await setup();
  const [a, b] = [testSession("a"), testSession("b")];
  const [ra, rb, rc] = [testReply(), testReply(), testReply(false)];
  mux.request(a, call("x", "slow", { _meta: { progressToken: "tok" } }), ra);
  mux.request(b, call("x", "slow"), rb);
  mux.request(b, call("y", "slow", { _meta: { progressToken: 7 } }), rc);
  const [toA, toB, toC] = child().traffic;
  const metaA = (toA.params as Json)._meta as Json;
  assert.equal(metaA.progressToken, toA.id, "the child sees a token unique on it");
  const progress = (token: unknown) =>
    child().emit({
      method: "notifications/progress",
      params: { progressToken: token, progress: 1, total: 2 },
    });
  progress(toA.id);
  progress(toB.id); // b asked for no progress: a guessed token goes nowhere.
  progress(toC.id); // a JSON response cannot carry progress.
  progress("tok");
  assert.deepEqual(ra.sent, [{
    jsonrpc: "2.0",
    method: "notifications/progress",
    params: { progressToken: "tok", progress: 1, total: 2 },
  }]);
  assert.deepEqual([rb.sent, rc.sent, a.notes, b.notes], [[], [], [], []]);
  await mux.close();
});

Deno.test("list changes and resource updates go to every session on the child", async () => {
  const { mux, child } = await setup();
  const [a, b] = [testSession("a"), testSession("b", "github:2")];
  mux.sessions.add(a).add(b);
  child().emit({ method: "notifications/tools/list_changed" });
  assert.equal(mux.tools.known, null);
  child().emit({ method: "notifications/resources/updated", params: { uri: "x:1" } });
  for (const s of [a, b]) {
    assert.deepEqual(s.notes.map((n) => n.method), [
      "notifications/tools/list_changed",
      "notifications/resources/updated",
    ]);
  }
  await mux.close();
});

Deno.test("unlinked notifications: to the one session with calls in flight, to nobody when ambiguous", async () => {
  const { mux, child } = await setup();
  const [a, b] = [testSession("a"), testSession("b")];
  mux.sessions.add(a).add(b);
  const log = (data: string) =>
    child().emit({ method: "notifications/message", params: { level: "info", data } });
  const [ra, rb] = [testReply(), testReply(false)];
  mux.request(a, call(1), ra);
  log("while a calls");
  a.logLevel = 3; // "warning" and above.
  log("below a's level");
  a.logLevel = -1;
  assert.deepEqual(ra.sent.map((m) => (m.params as Json).data), ["while a calls"]);
  mux.request(b, call(2), rb);
  log("ambiguous");
  child().emit({ method: "notifications/custom", params: {} });
  assert.equal(ra.sent.length, 1, "two sessions in flight: nobody is told");
  assert.deepEqual([a.notes, b.notes], [[], []]);
  child().emit({ id: child().traffic[0].id, result: {} });
  log("only b in flight, on a JSON reply");
  assert.deepEqual(b.notes.map((m) => (m.params as Json).data), [
    "only b in flight, on a JSON reply",
  ]);
  await mux.close();
});

Deno.test("unlinked notifications with nothing in flight: every session by its log level, none on a shared child", async () => {
  for (const shared of [false, true]) {
    const { mux, child } = await setup({ shared });
    const [a, b] = [testSession("a"), testSession("b")];
    b.logLevel = 4; // "error" and above.
    mux.sessions.add(a).add(b);
    child().emit({ method: "notifications/message", params: { level: "info", data: "i" } });
    child().emit({ method: "notifications/message", params: { level: "error", data: "e" } });
    child().emit({ method: "notifications/message", params: { level: "loud", data: "?" } });
    const data = (notes: Json[]) => notes.map((n) => (n.params as Json).data);
    if (shared) assert.deepEqual([a.notes, b.notes], [[], []], "shared: never guess");
    else assert.deepEqual([data(a.notes), data(b.notes)], [["i", "e"], ["e"]]);
    await mux.close();
  }
});

Deno.test("server requests: ping is answered by the proxy; other methods are refused; sampling goes to the newest caller that can answer", async () => {
  const { mux, child } = await setup();
  const a = testSession("a", "github:1", { sampling: true });
  const noSampling = testSession("n", "github:1", { elicitation: true });
  const [ra, rn] = [testReply(), testReply()];
  mux.request(a, call(1), ra);
  mux.request(noSampling, call(2), rn);
  child().emit({ id: "p1", method: "ping" });
  assert.deepEqual(lastAt(child()), { jsonrpc: "2.0", id: "p1", result: {} });
  child().emit({ id: "x1", method: "tools/list" });
  assert.equal((lastAt(child()).error as Json).code, -32601);
  child().emit({ id: "s1", method: "sampling/createMessage", params: { messages: [] } });
  assert.equal(rn.sent.length, 0, "the session without the capability is skipped");
  const relayed = ra.sent[0];
  assert.equal(relayed.method, "sampling/createMessage");
  assert.match(String(relayed.id), /^mop-\d+$/, "the proxy's own id on the way down");
  mux.response(noSampling, { jsonrpc: "2.0", id: relayed.id, result: { forged: true } });
  assert.equal(lastAt(child()).id, "x1", "an answer from another session is dropped");
  mux.response(a, { jsonrpc: "2.0", id: relayed.id, result: { role: "assistant" } });
  assert.deepEqual(lastAt(child()), { jsonrpc: "2.0", id: "s1", result: { role: "assistant" } });
  mux.response(a, { jsonrpc: "2.0", id: relayed.id, result: { again: true } });
  assert.equal(child().traffic.filter((m) => m.id === "s1").length, 1, "answered once");
  await mux.close();
});

Deno.test("server requests never reach another person: two identities in flight, the child's request is refused", async () => {
  const { mux, child } = await setup();
  const [mine, mine2, theirs] = [
    testSession("a", "github:1"),
    testSession("a2", "github:1"),
    testSession("b", "github:2"),
  ];
  const [r1, r2, r3] = [testReply(), testReply(), testReply()];
  mux.request(mine, call(1), r1);
  mux.request(mine2, call(2), r2);
  child().emit({ id: "e1", method: "elicitation/create", params: {} });
  assert.equal(r2.sent.length, 1, "one person, two sessions: the newest call's session");
  mux.request(theirs, call(3), r3);
  child().emit({ id: "e2", method: "elicitation/create", params: {} });
  const refusal = lastAt(child());
  assert.equal(refusal.id, "e2");
  assert.equal((refusal.error as Json).code, -32601);
  assert.match(String((refusal.error as Json).message), /no connected client can answer/);
  assert.deepEqual([r1.sent.length, r2.sent.length, r3.sent.length], [0, 1, 0]);
  await mux.close();
});

Deno.test("server requests: a non-streaming caller is never chosen", async () => {
  const { mux, child } = await setup();
  const a = testSession("a");
  const r = testReply(false);
  mux.request(a, call(1), r);
  child().emit({ id: "s1", method: "sampling/createMessage", params: {} });
  assert.equal((lastAt(child()).error as Json).code, -32601);
  assert.deepEqual(r.sent, []);
  await mux.close();
});

Deno.test("server requests: the child's cancellation reaches the session under the id it knows; an answer after a restart is dropped", async () => {
  const { mux, child, fake } = await setup();
  const a = testSession("a");
  const r = testReply();
  mux.request(a, call(1), r);
  child().emit({ id: 41, method: "roots/list" });
  assert.equal(r.sent.length, 0, "a did not declare roots");
  child().emit({ id: 42, method: "sampling/createMessage", params: {} });
  child().emit({ method: "notifications/cancelled", params: { requestId: 42, reason: "late" } });
  assert.deepEqual(a.notes, [{
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: r.sent[0].id, reason: "late" },
  }]);

  for (const end of ["crash", "planned stop"]) {
    const r2 = testReply();
    mux.request(a, call(2), r2);
    child().emit({ id: 43, method: "sampling/createMessage", params: {} });
    const downstreamId = r2.sent[0].id;
    const first = child();
    if (end === "crash") await first.crash();
    else await mux.supervisor.stop("idle timeout");
    await mux.supervisor.ready();
    assert.notEqual(fake.last, first);
    mux.response(a, { jsonrpc: "2.0", id: downstreamId, result: {} });
    assert.deepEqual(fake.last.traffic, [], `${end}: the new child never asked`);
  }
  await mux.close();
});

Deno.test("client cancellation: the child gets the rewritten id, the caller -32800; another session's same id is untouched", async () => {
  const { mux, child, completions } = await setup();
  const [a, b] = [testSession("a"), testSession("b")];
  const [ra, rb] = [testReply(), testReply()];
  mux.request(a, call(5), ra);
  mux.request(b, call(5), rb);
  const toA = child().traffic[0];
  const toB = child().traffic[1];
  mux.notification(a, {
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: 99 },
  });
  assert.equal(child().traffic.length, 2, "an unknown id is ignored");
  mux.notification(b, {
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: 5, reason: "user" },
  });
  assert.deepEqual(lastAt(child()), {
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: toB.id, reason: "user" },
  });
  assert.equal((rb.final()?.error as Json).code, -32800);
  assert.equal(rb.final()?.id, 5);
  assert.equal(ra.final(), undefined, "a's call with the same id goes on");
  assert.equal(mux.inFlight, 1);
  assert.equal(completions[0].outcome, "cancelled");
  child().emit({ id: toB.id, result: {} });
  assert.equal(rb.final()?.error !== undefined, true, "a late answer does not reach b");
  child().emit({ id: toA.id, result: {} });
  assert.deepEqual(ra.final()?.result, {});
  await mux.close();
});

Deno.test("client notifications: initialized is the proxy's own business; the rest reach the child", async () => {
  const { mux, child } = await setup();
  const a = testSession("a");
  mux.notification(a, { jsonrpc: "2.0", method: "notifications/initialized" });
  mux.notification(a, { jsonrpc: "2.0", method: "notifications/roots/list_changed" });
  assert.deepEqual(child().received.slice(1), [
    { jsonrpc: "2.0", method: "notifications/initialized" }, // The proxy's own, at start.
    { jsonrpc: "2.0", method: "notifications/roots/list_changed" },
  ]);
  await mux.close();
});

Deno.test("timeouts: an overdue call gets -32001 and the child a cancellation naming the timeout", async () => {
  const { mux, child, completions } = await setup({ requestTimeoutMs: 30_000 });
  const a = testSession("a");
  const [late, fresh] = [testReply(), testReply()];
  mux.request(a, call(1), late);
  const sent = Date.now();
  mux.sweep(sent + 29_000);
  assert.equal(mux.inFlight, 1, "not overdue yet");
  mux.sweep(sent + 31_000);
  mux.request(a, call(2), fresh);
  assert.deepEqual(late.final()?.error, { code: -32001, message: "request timed out after 30s" });
  assert.deepEqual(child().traffic[1], {
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: child().traffic[0].id, reason: "timed out after 30s" },
  });
  assert.equal(completions[0].outcome, "timeout");
  assert.equal(mux.inFlight, 1);
  await mux.close();
});

Deno.test("maxInFlight: the rest wait their turn, beyond four times as many the caller hears 'busy'", async () => {
  const { mux, child } = await setup({ maxInFlight: 2 });
  const a = testSession("a");
  const replies = Array.from({ length: 11 }, () => testReply());
  replies.forEach((r, i) => mux.request(a, call(i), r));
  assert.equal(child().traffic.length, 2);
  assert.equal(mux.queued, 8);
  assert.match(String((replies[10].final()?.error as Json).message), /server busy/);
  child().emit({ id: child().traffic[0].id, result: {} });
  assert.equal(child().traffic.length, 3, "a finished call lets the next one in");
  assert.deepEqual(child().traffic.map((m) => m.id), [1, 2, 3]);
  assert.equal(mux.queued, 7);
  await mux.close();
});

Deno.test("detach: the session's calls are cancelled at the child and its server requests refused", async () => {
  const { mux, child } = await setup();
  const [a, b] = [testSession("a"), testSession("b")];
  mux.sessions.add(a).add(b);
  const [ra, rb] = [testReply(), testReply()];
  mux.request(a, call(1), ra);
  child().emit({ id: "s1", method: "sampling/createMessage", params: {} });
  mux.request(b, call(1), rb);
  mux.detach(a);
  const [toA, , cancelled, refused] = child().traffic;
  assert.deepEqual(cancelled.params, { requestId: toA.id, reason: "session closed" });
  assert.deepEqual(refused, {
    jsonrpc: "2.0",
    id: "s1",
    error: { code: -32000, message: "the client session closed" },
  });
  assert.deepEqual(ra.final()?.error, { code: -32000, message: "the session ended" });
  assert.equal(mux.inFlight, 1, "b's call stays");
  assert.equal(mux.sessions.has(a), false);
  await mux.close();
});

Deno.test("a child exit fails the calls in flight with -32603; after the restart every session hears list_changed", async () => {
  const { mux, child, completions } = await setup({}, {
    capabilities: { tools: { listChanged: true }, prompts: {}, resources: { listChanged: true } },
  });
  const a = testSession("a");
  mux.sessions.add(a);
  const r = testReply();
  mux.request(a, call(1), r);
  await child().crash(2, "segfault");
  assert.deepEqual(r.final()?.error, {
    code: -32603,
    message: 'server "s" exited (code 2): segfault',
  });
  assert.equal(completions[0].outcome, "child_exit");
  await eventually(() => a.notes.length === 2, 5000, "the restart announced");
  assert.deepEqual(a.notes.map((n) => n.method), [
    "notifications/tools/list_changed",
    "notifications/resources/list_changed",
  ]);
  await mux.close();
});

Deno.test("a session is told of its child's unexpected exit and of the restart (the merged endpoint's hooks)", async () => {
  const { mux, child } = await setup();
  const events: string[] = [];
  const a = {
    ...testSession("a"),
    childExited: () => events.push("exited"),
    childRestarted: () => events.push("restarted"),
  };
  mux.sessions.add(a);
  await child().crash(2, "segfault");
  assert.deepEqual(events, ["exited"]);
  await eventually(() => events.length === 2, 5000, "the restart");
  assert.deepEqual(events, ["exited", "restarted"]);
  // A stop on purpose (idle) is no exit to announce.
  await mux.supervisor.stop("idle timeout");
  assert.deepEqual(events, ["exited", "restarted"]);
  await mux.close();
});

Deno.test("shutdown: calls in flight, queued and waiting for the child all get 'proxy shutting down'", async () => {
  const { mux } = await setup({ maxInFlight: 1 });
  const a = testSession("a");
  const [inFlight, queued, queued2] = [testReply(), testReply(), testReply()];
  mux.request(a, call(1), inFlight);
  mux.request(a, call(2), queued);
  mux.request(a, call(2), queued2);
  await mux.supervisor.stop("idle");
  const waiting = testReply();
  const other = new Mux("o", { ...mux.options });
  other.request(a, call(3), waiting);
  mux.shutdown();
  other.shutdown();
  const after = testReply();
  mux.request(a, call(4), after);
  for (const r of [inFlight, queued, queued2, waiting, after]) {
    assert.deepEqual(r.final()?.error, { code: -32000, message: "proxy shutting down" });
  }
  await Promise.all([mux.close(), other.close()]);
});

Deno.test("completions: outcome, tool and (only when opted in) arguments for the audit log", async () => {
  for (const logArguments of [false, true]) {
    const { mux, child, completions } = await setup({ logArguments });
    const a = testSession("a");
    mux.request(a, call(1, "add", { arguments: { x: 1 } }), testReply());
    mux.request(a, call(2, "fail"), testReply());
    mux.request(a, { jsonrpc: "2.0", id: 3, method: "resources/list" }, testReply());
    const [t1, t2, t3] = child().traffic;
    child().emit({ id: t1.id, result: { content: [] } });
    child().emit({ id: t2.id, result: { isError: true } });
    child().emit({ id: t3.id, error: { code: -32601, message: "no" } });
    assert.deepEqual(
      completions.map((c) => [c.method, c.tool, c.outcome, c.arguments]),
      [
        ["tools/call", "add", "ok", logArguments ? { x: 1 } : undefined],
        ["tools/call", "fail", "tool_error", logArguments ? {} : undefined],
        ["resources/list", undefined, "error", undefined],
      ],
    );
    await mux.close();
  }
});

Deno.test("tool catalogue: one tools/list (every page) for concurrent askers, kept until list_changed or a restart", async () => {
  const { mux, child } = await setup();
  const lists = () => child().traffic.filter((m) => m.method === "tools/list");
  const answerLists = () => {
    for (const m of lists()) {
      if (answered.has(m.id)) continue;
      answered.add(m.id);
      const cursor = (m.params as Json).cursor;
      child().emit({
        id: m.id,
        result: cursor === undefined
          ? { tools: [{ name: "a", inputSchema: { type: "object" } }], nextCursor: "p2" }
          : { tools: [{ name: "b", inputSchema: { type: "object" } }] },
      });
    }
  };
  const answered = new Set<unknown>();
  const first = mux.tools.tool("a");
  const second = mux.tools.tool("b");
  await eventually(() => lists().length === 1, 5000, "the first page asked for");
  answerLists();
  await eventually(() => lists().length === 2, 5000, "the second page asked for");
  assert.deepEqual(lists()[1].params as Json, { cursor: "p2" });
  answerLists();
  assert.equal((await first)?.name, "a");
  assert.equal((await second)?.name, "b");
  assert.equal(await mux.tools.tool("c"), undefined);
  assert.equal(lists().length, 2, "kept: no new tools/list");
  assert.deepEqual([...mux.tools.known!.keys()], ["a", "b"]);

  child().emit({ method: "notifications/tools/list_changed" });
  const again = mux.tools.tool("a");
  await eventually(() => lists().length === 3, 5000, "asked again after list_changed");
  answerLists();
  await eventually(() => lists().length === 4, 5000, "and its second page");
  answerLists();
  assert.equal((await again)?.name, "a");

  await child().crash();
  await eventually(() => mux.supervisor.state === "ready", 5000, "the restart");
  const fresh = mux.tools.tool("b");
  await eventually(() => lists().length === 1, 5000, "the new child asked");
  answered.clear();
  answerLists();
  await eventually(() => lists().length === 2, 5000, "the new child's second page");
  answerLists();
  assert.equal((await fresh)?.name, "b");
  await mux.close();
});

Deno.test("tool catalogue: a failed tools/list is not kept", async () => {
  const { mux, child } = await setup();
  const failed = mux.tools.tools();
  await eventually(() => child().traffic.length === 1, 5000, "tools/list sent");
  child().emit({ id: child().traffic[0].id, error: { code: -32601, message: "no tools" } });
  await assert.rejects(failed, /no tools/);
  const retried = mux.tools.tools();
  await eventually(() => child().traffic.length === 2, 5000, "asked again");
  child().emit({ id: child().traffic[1].id, result: { tools: [] } });
  assert.equal((await retried).size, 0);
  await mux.close();
});
