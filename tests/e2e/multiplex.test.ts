/**
 * Many sessions on one child: ids never collide, and each message reaches only its stream.
 *
 * One proxy serves every test (each opens its own sessions): `fx` is one per-user child for all
 * of them, `solo` and `common` the other modes.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { connect, type Connected, text } from "../helpers/client.ts";
import { alive, eventually } from "../helpers/procs.ts";

Deno.test("multiplexing sessions on children", async (t) => {
  const proxy = await startProxy({
    mcpServers: {
      fx: fixtureServer({ mode: "per-user" }),
      solo: fixtureServer({ mode: "per-session" }),
      common: fixtureServer({ mode: "shared" }),
    },
  });
  try {
    for (const count of [2, 8]) {
      await t.step(
        `${count} concurrent sessions on one per-user child get their own results`,
        () => concurrentSessions(proxy, count),
      );
    }
    await t.step(
      "sampling and elicitation go to the session whose call is in flight",
      () => serverRequests(proxy),
    );
    // Last on `fx`: its toggle changes the child's tool list.
    await t.step(
      "progress goes only to the stream that asked, list_changed to every session",
      () => progressAndListChanged(proxy),
    );
    await t.step(
      "modes: per-session children are separate, shared is one child for everyone",
      () => modes(proxy),
    );
  } finally {
    await proxy.stop();
  }
});

async function concurrentSessions(proxy: ProxyProcess, count: number) {
  const sessions: Connected[] = [];
  try {
    for (let i = 0; i < count; i++) {
      sessions.push(await connect(proxy.url("fx"), { name: `s${i}` }));
    }
    // Every SDK client numbers its requests from 0, so the child would see the same ids from
    // every session unless the proxy rewrites them.
    const pids = await Promise.all(
      sessions.map((s) => s.client.callTool({ name: "pid", arguments: {} })),
    );
    assert.equal(new Set(pids.map(text)).size, 1, "one child serves them all");
    const rounds = 10;
    const calls = sessions.flatMap((s, i) =>
      Array.from({ length: rounds }, async (_, r) => {
        const payload = `session ${i} call ${r}`;
        const result = await s.client.callTool({
          name: r % 2 ? "echo" : "slow",
          arguments: r % 2 ? { text: payload } : { ms: (r * 7 + i * 3) % 20 },
        });
        return { expected: r % 2 ? payload : `slept ${(r * 7 + i * 3) % 20}`, got: text(result) };
      })
    );
    for (const { expected, got } of await Promise.all(calls)) assert.equal(got, expected);
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
}

async function progressAndListChanged(proxy: ProxyProcess) {
  const a = await connect(proxy.url("fx"), { name: "a" });
  const b = await connect(proxy.url("fx"), { name: "b" });
  const seenA: number[] = [];
  const seenB: number[] = [];
  const [ra, rb] = await Promise.all([
    a.client.callTool({ name: "progress", arguments: { steps: 5, delayMs: 15 } }, undefined, {
      onprogress: (p) => seenA.push(p.progress),
    }),
    b.client.callTool({ name: "progress", arguments: { steps: 3, delayMs: 20 } }, undefined, {
      onprogress: (p) => seenB.push(p.progress),
    }),
  ]);
  assert.equal(text(ra), "done 5");
  assert.equal(text(rb), "done 3");
  assert.deepEqual(seenA, [1, 2, 3, 4, 5]);
  assert.deepEqual(seenB, [1, 2, 3]);

  await a.client.callTool({ name: "log", arguments: { message: "for a only" } });
  assert.deepEqual(a.logs, ["for a only"]);
  assert.deepEqual(b.logs, []);

  await a.client.callTool({ name: "toggle", arguments: {} });
  await eventually(
    () => a.listChanged === 1 && b.listChanged === 1,
    5000,
    "list_changed on both",
  );
  const tools = (await b.client.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes("extra"), "the list change is visible to the other session");
  await a.close();
  await b.close();
}

async function serverRequests(proxy: ProxyProcess) {
  const a = await connect(proxy.url("fx"), {
    name: "alice",
    answer: true,
    samplingText: "alice answers",
  });
  const b = await connect(proxy.url("fx"), {
    name: "bob",
    answer: true,
    samplingText: "bob answers",
  });
  assert.equal(
    text(await b.client.callTool({ name: "sample", arguments: { prompt: "q1" } })),
    "sampled: bob answers q1",
  );
  assert.equal(
    text(await a.client.callTool({ name: "sample", arguments: { prompt: "q2" } })),
    "sampled: alice answers q2",
  );
  assert.equal(
    text(await b.client.callTool({ name: "elicit", arguments: { message: "?" } })),
    "elicited: accept bob says yes",
  );
  // A session that did not declare the capability cannot be asked: the child gets an error.
  const plain = await connect(proxy.url("fx"), { name: "plain" });
  await assert.rejects(
    plain.client.callTool({ name: "sample", arguments: { prompt: "q3" } }),
    /no connected client can answer sampling\/createMessage/,
  );
  await Promise.all([a.close(), b.close(), plain.close()]);
}

async function modes(proxy: ProxyProcess) {
  const pid = async (c: Connected) => text(await c.client.callTool({ name: "pid", arguments: {} }));
  const s1 = await connect(proxy.url("solo"));
  const s2 = await connect(proxy.url("solo"));
  assert.notEqual(await pid(s1), await pid(s2));
  const c1 = await connect(proxy.url("common"));
  const c2 = await connect(proxy.url("common"));
  assert.equal(await pid(c1), await pid(c2));
  const soloPid = Number(await pid(s1));
  // Ending a per-session session (DELETE) ends its child.
  await s1.terminate();
  await proxy.waitForLog(/stopping child child="solo#\d+" reason="session ended"/);
  await eventually(() => !alive(soloPid), 8000, "the per-session child to exit");
  assert.ok(await pid(s2), "the other session's child still answers");
  await Promise.all([s1.close(), s2.close(), c1.close(), c2.close()]);
}
