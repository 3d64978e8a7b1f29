/**
 * Child supervision: crashes, crash loops, missing commands, idle timeout, clean shutdown.
 *
 * One proxy serves the tests of one server's child, each on a server of its own, and is then
 * stopped with calls open; the signal tests have a proxy each.
 */
import assert from "node:assert/strict";
import {
  crashingServer,
  FIXTURE,
  fixtureServer,
  type ProxyProcess,
  startProxy,
} from "../helpers/proxy.ts";
import { connect, INITIALIZE, postMcp, text } from "../helpers/client.ts";
import { alive, descendants, eventually, liveInGroups } from "../helpers/procs.ts";

/** Waits until /healthz shows `count` calls in flight on the first child of `server`. */
async function waitInFlight(origin: string, server: string, count: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const health = await (await fetch(`${origin}/healthz`)).json();
    if (health.servers[server].children[0]?.inFlight === count) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${count} call(s) in flight`);
}

Deno.test("supervising a server's child", async (t) => {
  const marker = await Deno.makeTempFile();
  const proxy = await startProxy({
    mcpServers: {
      fx: fixtureServer({ restartDelay: "200ms" }),
      loop: crashingServer(marker, { restartDelay: "50ms" }),
      nope: { command: "mop-no-such-command-xyz" },
      idle: fixtureServer({ idleTimeout: "1s", warm: 0 }),
      slow: fixtureServer({ requestTimeout: "60s", warm: 0 }, ["--init-delay=60000"]),
      busy: fixtureServer({ maxInFlight: 1 }),
      late: fixtureServer({ requestTimeout: "60s", warm: 0 }, ["--init-delay=60000"]),
    },
    // The missing command is found missing by the start's permission self-check.
  }, { process: true });
  try {
    await t.step(
      "a crash mid-call fails that call with -32603 and the next call succeeds on the restarted child",
      () => crashMidCall(proxy),
    );
    await t.step(
      "a crash loop marks the server unavailable (503 + Retry-After), then it recovers",
      () => crashLoop(proxy, marker),
    );
    await t.step(
      "a command that does not exist gives a JSON-RPC error on initialize and a log line",
      () => missingCommand(proxy),
    );
    await t.step(
      "the idle timeout ends a child, and the next call starts a new one",
      () => idleTimeout(proxy),
    );
    await t.step(
      "a slow start logs 'still starting' and /healthz shows the child starting with its age",
      () => slowStart(proxy),
    );
    // Last: it stops the proxy.
    await t.step(
      "calls open at shutdown (in flight, queued, starting) get an answer before the children stop",
      () => openAtShutdown(proxy),
    );
  } finally {
    await proxy.stop();
    await Deno.remove(marker).catch(() => {});
  }
});

async function crashMidCall(proxy: ProxyProcess) {
  const c = await connect(proxy.url("fx"));
  const before = text(await c.client.callTool({ name: "pid", arguments: {} }));
  await assert.rejects(
    c.client.callTool({ name: "crash", arguments: { code: 3 } }),
    (error: Error & { code?: number }) => {
      assert.equal(error.code, -32603);
      assert.match(error.message, /server "fx" exited \(code 3\): fixture: crashing mid-call/);
      return true;
    },
  );
  const sessionBefore = c.sessionId();
  assert.equal(
    text(await c.client.callTool({ name: "echo", arguments: { text: "again" } })),
    "again",
  );
  const after = text(await c.client.callTool({ name: "pid", arguments: {} }));
  assert.notEqual(after, before, "a new child serves the same session");
  assert.equal(c.sessionId(), sessionBefore);
  // The fixture declares tools.listChanged, so the session hears that the child restarted.
  await eventually(() => c.listChanged >= 1, 5000, "tools/list_changed after the restart");
  await proxy.waitForLog(/child exited; restarting.*fx#\d+/);
  await c.close();
}

async function crashLoop(proxy: ProxyProcess, marker: string) {
  const first = await postMcp(proxy.url("loop"));
  assert.equal(first.status, 200);
  const body = await first.json();
  assert.equal(body.error.code, -32603);
  assert.match(
    body.error.message,
    /exited during start-up \(code 1\): fixture: crashing on start/,
  );
  // Five starts that crash: each start of the fixture may take seconds on a loaded machine.
  await proxy.waitForLog(/server marked unavailable after repeated exits server=loop/, 60_000);
  // Until the marker goes, the server alternates between unavailable (a request gets 503) and
  // a timer-driven retry whose start fails (a request waits for it and gets -32603): on a
  // loaded machine the next request may land in a retry, so it waits for the state.
  let refused: Response | undefined;
  let health: { servers: Record<string, { state: string }> } | undefined;
  for (let i = 0; i < 20 && !refused; i++) {
    const res = await postMcp(proxy.url("loop"));
    if (res.status === 503) {
      refused = res;
      break;
    }
    assert.equal((await res.json()).error?.code, -32603, "a retry's failed start");
  }
  assert.ok(refused, "a 503 while the server is unavailable");
  assert.ok(Number(refused.headers.get("retry-after")) >= 1);
  assert.match((await refused.json()).error.message, /unavailable after repeated crashes/);
  for (let i = 0; i < 200 && health?.servers.loop.state !== "unavailable"; i++) {
    if (health) await new Promise((r) => setTimeout(r, 50));
    health = await (await fetch(`${proxy.admin}/healthz`)).json();
  }
  assert.equal(health?.servers.loop.state, "unavailable");

  await Deno.remove(marker);
  await proxy.waitForLog(/child ready child="loop#\d+"/, 60_000);
  const ok = await postMcp(proxy.url("loop"));
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).result.serverInfo.name, "fixture");
}

async function missingCommand(proxy: ProxyProcess) {
  const res = await postMcp(proxy.url("nope"));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.error.code, -32603);
  assert.match(body.error.message, /command "mop-no-such-command-xyz" not found/);
  await proxy.waitForLog(/cannot start server.*mop-no-such-command-xyz/);
  // The start-up permission check tells "not installed" from "not permitted" and keeps serving.
  await proxy.waitForLog(/command "mop-no-such-command-xyz" is not found on PATH/);
}

async function idleTimeout(proxy: ProxyProcess) {
  const c = await connect(proxy.url("idle"));
  const pid = Number(text(await c.client.callTool({ name: "pid", arguments: {} })));
  await proxy.waitForLog(/stopping child child="idle#\d+" reason="idle timeout"/, 10_000);
  await eventually(() => !alive(pid), 8000, "the idle child to exit");
  const next = Number(text(await c.client.callTool({ name: "pid", arguments: {} })));
  assert.notEqual(next, pid);
  await c.close();
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} stops every child and grandchild and exits 0`, async () => {
    // `sh` leaves a grandchild (sleep) behind unless the whole process group is signalled.
    const cmd = `sleep 300 & exec deno run --no-prompt --allow-env ${FIXTURE}`;
    const proxy = await startProxy({
      mcpServers: {
        a: { command: "sh", args: ["-c", cmd], mode: "shared" },
        b: { command: "sh", args: ["-c", cmd] },
      },
    }, { process: true });
    let groups: number[] = [];
    try {
      const c = await connect(proxy.url("b"));
      await c.client.callTool({ name: "echo", arguments: { text: "x" } });
      await eventually(() =>
        descendants(proxy.process.pid).filter((p) => p.command === "sleep").length === 2
      );
      const family = descendants(proxy.process.pid);
      groups = [...new Set(family.filter((p) => p.command === "sleep").map((p) => p.pgid))];
      assert.equal(groups.length, 2);
      const status = await proxy.stop(signal);
      assert.equal(status.code, 0);
      // SIGKILL was sent before the proxy exited; the kernel may take a moment to reap under load.
      await eventually(
        () => liveInGroups(groups).length === 0,
        3000,
        "the process groups to be gone",
      )
        .catch(() => assert.deepEqual(liveInGroups(groups), []));
    } finally {
      await proxy.stop("SIGKILL");
    }
  });
}

async function openAtShutdown(proxy: ProxyProcess) {
  const c = await connect(proxy.url("busy"));
  const calls = [1, 2].map((n) =>
    c.client.callTool({ name: "slow", arguments: { ms: 60_000 + n } }).then(
      () => assert.fail("a call open at shutdown cannot succeed"),
      (error: Error & { code?: number }) => error,
    )
  );
  await waitInFlight(proxy.admin, "busy", 1);
  const starting = postMcp(proxy.url("late"));
  await proxy.waitForLog(/child started child="late#\d+"/);
  const status = proxy.stop("SIGTERM");
  for (const error of await Promise.all(calls)) {
    assert.equal(error.code, -32000, String(error));
    assert.match(error.message, /proxy shutting down/);
  }
  const refused = await starting;
  assert.equal(refused.status, 503);
  assert.match((await refused.json()).error.message, /proxy shutting down/);
  assert.equal((await status).code, 0);
}

async function slowStart(proxy: ProxyProcess) {
  const aborter = new AbortController();
  const pending = fetch(proxy.url("slow"), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify(INITIALIZE),
    signal: aborter.signal,
  });
  try {
    await proxy.waitForLog(/child started child="slow#\d+"/);
    const health = await (await fetch(`${proxy.admin}/healthz`)).json();
    const [child] = health.servers.slow.children;
    assert.equal(child.state, "starting");
    assert.equal(typeof child.startingSeconds, "number");
    assert.equal(health.servers.slow.state, "starting");
    const line = await proxy.waitForLog(/still starting .*child="slow#/, 20_000);
    assert.match(
      line,
      /still starting \(no answer to initialize yet\) child="slow#\d+" seconds=\d+/,
    );
    const later = (await (await fetch(`${proxy.admin}/healthz`)).json()).servers.slow.children[0];
    assert.ok(later.startingSeconds >= 1, JSON.stringify(later));
  } finally {
    aborter.abort();
    await pending.catch(() => {});
  }
}
