/**
 * The child limits under faults: a failed per-session start leaves no slot behind, a starting
 * child is never evicted (the newcomer gets 503 + Retry-After), and restarts driven by the
 * backoff timer stay within `limits.childrenTotal`.
 */
import assert from "node:assert/strict";
import { crashingServer, fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { connect, type Connected, postMcp, text } from "../helpers/client.ts";

async function health(origin: string): Promise<Record<string, { children: unknown[] }>> {
  return (await (await fetch(`${origin}/healthz`)).json()).servers;
}

/** Polls /healthz until `check` accepts a server's children. */
async function untilChildren(
  origin: string,
  server: string,
  check: (children: Array<{ state: string; inFlight: number }>) => boolean,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const children = (await health(origin))[server].children as Array<
      { state: string; inFlight: number }
    >;
    if (check(children)) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${server} ${JSON.stringify(children)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Connects to "good" and starts a 60 s call on it; returns once the call is in flight. Bad's
 * retry after it was marked unavailable (about a second later, and again after each further
 * exit) holds the only slot while it starts, and may evict "good" while it is idle between its
 * start and the call: the connect or the call is then refused under limits.childrenTotal, and is
 * made again once bad is no longer starting.
 */
async function busyGood(proxy: ProxyProcess): Promise<Connected> {
  for (let attempt = 1;; attempt++) {
    let good: Connected | undefined;
    try {
      good = await connect(proxy.url("good"));
      await inFlightCall(proxy.admin, good);
      return good;
    } catch (error) {
      await good?.close().catch(() => {});
      if (!/limits\.childrenTotal/.test(String(error)) || attempt >= 10) throw error;
      await untilChildren(proxy.admin, "bad", (c) => c.every((x) => x.state !== "starting"));
    }
  }
}

/** Starts a 60 s call on `good`; resolves once it is in flight, rejects if it is refused. */
async function inFlightCall(admin: string, good: Connected): Promise<void> {
  let refused: unknown;
  good.client.callTool({ name: "slow", arguments: { ms: 60_000 } }, undefined, {
    timeout: 120_000,
  }).catch((error) => refused = error ?? "refused");
  await untilChildren(admin, "good", (c) => {
    if (refused !== undefined) throw refused;
    return c[0]?.inFlight === 1;
  });
}

Deno.test("childrenTotal: a child that is still starting is not evicted; the newcomer gets 503 + Retry-After", async () => {
  const proxy = await startProxy({
    limits: { childrenTotal: 1, childrenPerUser: 1 },
    mcpServers: {
      fx: fixtureServer({ mode: "per-session", warm: 0 }, ["--init-delay=5000"]),
    },
  });
  try {
    const first = postMcp(proxy.url("fx"));
    await proxy.waitForLog(/child started child="fx#\d+"/);
    const second = await postMcp(proxy.url("fx"));
    assert.equal(second.status, 503);
    assert.ok(Number(second.headers.get("retry-after")) >= 1);
    assert.match((await second.json()).error.message, /limits\.childrenPerUser/);
    const ok = await first;
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).result.serverInfo.name, "fixture");
    assert.doesNotMatch(proxy.logs(), /exited during start-up/);
  } finally {
    await proxy.stop();
  }
});

// One proxy for both: a slot left behind by gone's failed starts would also refuse a's child.
Deno.test("childrenTotal 1, no spares", async (t) => {
  const proxy = await startProxy({
    limits: { childrenTotal: 1 },
    mcpServers: {
      gone: { command: "sh", args: ["-c", "exit 1"], mode: "per-session", warm: 0 },
      a: fixtureServer({ warm: 0 }),
      b: fixtureServer({ warm: 0 }),
    },
  });
  try {
    await t.step("per-session without spares: failed initializes leave no slot", async () => {
      for (let i = 0; i < 5; i++) {
        assert.equal((await (await postMcp(proxy.url("gone"))).json()).error.code, -32603);
      }
      assert.deepEqual((await health(proxy.admin)).gone.children, []);
    });
    await t.step(
      "childrenTotal: a ready child with a call in flight is not evicted either",
      () => inFlightNotEvicted(proxy),
    );
  } finally {
    await proxy.stop();
  }
});

async function inFlightNotEvicted(proxy: ProxyProcess) {
  const a = await connect(proxy.url("a"));
  const slow = a.client.callTool({ name: "slow", arguments: { ms: 3000 } });
  await untilChildren(proxy.admin, "a", (c) => c[0]?.inFlight === 1);
  const refused = await postMcp(proxy.url("b"));
  assert.equal(refused.status, 503);
  assert.match((await refused.json()).error.message, /limits\.childrenTotal/);
  assert.equal(text(await slow), "slept 3000");
  await a.close();
}

Deno.test("a timer-driven restart obeys childrenTotal: with no idle child to stop it is postponed", async () => {
  const marker = await Deno.makeTempFile();
  const proxy = await startProxy({
    limits: { childrenTotal: 1 },
    mcpServers: {
      bad: crashingServer(marker, { restartDelay: "50ms", warm: 0 }),
      good: fixtureServer({ warm: 0 }),
    },
  });
  try {
    assert.equal((await (await postMcp(proxy.url("bad"))).json()).error.code, -32603);
    // Five starts that crash: each may take seconds on a loaded machine.
    await proxy.waitForLog(/server marked unavailable after repeated exits/, 60_000);
    // An unavailable server holds no slot: "good" starts and stays busy.
    const good = await busyGood(proxy);
    await Deno.remove(marker);
    const line = await proxy.waitForLog(/restart postponed until the next request/, 30_000);
    assert.match(line, /server=bad/);
    assert.match(line, /limits\.childrenTotal/);
    await untilChildren(proxy.admin, "bad", (c) => c.length === 1 && c[0].state === "stopped");
    await untilChildren(proxy.admin, "good", (c) => c.length === 1 && c[0].state === "running");
    await good.close();
  } finally {
    await proxy.stop();
    await Deno.remove(marker).catch(() => {});
  }
});
