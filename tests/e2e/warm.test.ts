/**
 * The warm pool: children that stay ready through idle periods, and spares for per-session
 * servers. One proxy serves both tests, each on servers of its own.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";
import { eventually } from "../helpers/procs.ts";

interface ChildStatus {
  state: string;
  pid: number | null;
}

async function children(proxy: ProxyProcess, server: string): Promise<ChildStatus[]> {
  const health = await (await fetch(`${proxy.admin}/healthz`)).json();
  return health.servers[server].children;
}

Deno.test("the warm pool", async (t) => {
  const proxy = await startProxy({
    mcpServers: {
      user: fixtureServer({ idleTimeout: "1s" }),
      common: fixtureServer({ idleTimeout: "1s", mode: "shared" }),
      cold: fixtureServer({ idleTimeout: "1s", warm: 0 }),
      solo: fixtureServer({ mode: "per-session", warm: 1 }),
    },
  });
  try {
    await t.step(
      "warm (default 1): per-user and shared children outlive the idle timeout; warm 0 lets it stop them",
      () => outliveIdle(proxy),
    );
    await t.step(
      "per-session servers keep spare children ready: a new session adopts one, a new spare starts",
      () => spares(proxy),
    );
  } finally {
    await proxy.stop();
  }
});

async function outliveIdle(proxy: ProxyProcess) {
  const pids: Record<string, string> = {};
  for (const name of ["user", "common", "cold"]) {
    const c = await connect(proxy.url(name));
    pids[name] = text(await c.client.callTool({ name: "pid", arguments: {} }));
    await c.close();
  }
  // The idle sweep that stops cold judges user and common too, and they were idle longer (each
  // session ended before cold's began): once cold is stopped, theirs would have been.
  await proxy.waitForLog(/stopping child child="cold#\d+" reason="idle timeout"/, 10_000);
  assert.equal((await children(proxy, "user"))[0].state, "running");
  assert.equal(String((await children(proxy, "user"))[0].pid), pids.user);
  assert.equal(String((await children(proxy, "common"))[0].pid), pids.common);
  assert.ok(!/child="(user|common)#\d+" reason="idle timeout"/.test(proxy.logs()));
  // A new session after the idle period finds the same warm child.
  const again = await connect(proxy.url("user"));
  assert.equal(text(await again.client.callTool({ name: "pid", arguments: {} })), pids.user);
  await again.close();
}

async function spares(proxy: ProxyProcess) {
  const ready = () => proxy.logs().split('child ready child="solo#').length - 1;
  await eventually(() => ready() >= 1, 15_000, "the spare to be ready");
  const [spare] = await children(proxy, "solo");
  assert.equal(spare.state, "running");
  const c = await connect(proxy.url("solo"));
  assert.equal(
    text(await c.client.callTool({ name: "pid", arguments: {} })),
    String(spare.pid),
    "adopted the spare",
  );
  await eventually(() => ready() >= 2, 15_000, "a new spare");
  const now = await children(proxy, "solo");
  assert.equal(now.length, 2);
  assert.ok(now.some((child) => child.pid !== spare.pid && child.state === "running"));
  await c.terminate();
  await c.close();
}
