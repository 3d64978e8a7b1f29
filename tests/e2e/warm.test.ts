/** The warm pool: children that stay ready through idle periods, and spares for per-session servers. */
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

Deno.test("warm (default 1): per-user and shared children outlive the idle timeout; warm 0 lets it stop them", async () => {
  const proxy = await startProxy({
    mcpServers: {
      user: fixtureServer({ idleTimeout: "1s" }),
      common: fixtureServer({ idleTimeout: "1s", mode: "shared" }),
      cold: fixtureServer({ idleTimeout: "1s", warm: 0 }),
    },
  });
  try {
    const pids: Record<string, string> = {};
    for (const name of ["user", "common", "cold"]) {
      const c = await connect(proxy.url(name));
      pids[name] = text(await c.client.callTool({ name: "pid", arguments: {} }));
      await c.close();
    }
    await proxy.waitForLog(/stopping child child="cold#\d+" reason="idle timeout"/, 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await children(proxy, "user"))[0].state, "running");
    assert.equal(String((await children(proxy, "user"))[0].pid), pids.user);
    assert.equal(String((await children(proxy, "common"))[0].pid), pids.common);
    assert.ok(!/child="(user|common)#\d+" reason="idle timeout"/.test(proxy.logs()));
    // A new session after the idle period finds the same warm child.
    const again = await connect(proxy.url("user"));
    assert.equal(text(await again.client.callTool({ name: "pid", arguments: {} })), pids.user);
    await again.close();
  } finally {
    await proxy.stop();
  }
});

Deno.test("per-session servers keep spare children ready: a new session adopts one, a new spare starts", async () => {
  const proxy = await startProxy({
    mcpServers: { solo: fixtureServer({ mode: "per-session", warm: 1 }) },
  });
  try {
    await eventually(() => proxy.logs().includes("child ready"), 15_000, "the spare to be ready");
    const [spare] = await children(proxy, "solo");
    assert.equal(spare.state, "running");
    const c = await connect(proxy.url("solo"));
    assert.equal(
      text(await c.client.callTool({ name: "pid", arguments: {} })),
      String(spare.pid),
      "adopted the spare",
    );
    await eventually(
      () => proxy.logs().split("child ready").length - 1 >= 2,
      15_000,
      "a new spare",
    );
    const now = await children(proxy, "solo");
    assert.equal(now.length, 2);
    assert.ok(now.some((child) => child.pid !== spare.pid && child.state === "running"));
    await c.terminate();
    await c.close();
  } finally {
    await proxy.stop();
  }
});
