/** A real third-party server through the proxy: @modelcontextprotocol/server-everything via npx. */
import assert from "node:assert/strict";
import { startProxy } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";
import { descendants, eventually, liveInGroups } from "../helpers/procs.ts";

export const EVERYTHING = ["-y", "@modelcontextprotocol/server-everything@2026.8.31", "stdio"];

Deno.test("server-everything: echo, get-sum and a long-running call with progress", async () => {
  const proxy = await startProxy({
    mcpServers: {
      everything: { command: "npx", args: EVERYTHING, mode: "shared", requestTimeout: "120s" },
    },
  }, { process: true });
  let groups: number[] = [];
  try {
    const c = await connect(proxy.url("everything"));
    assert.equal(c.client.getServerVersion()?.name, "mcp-servers/everything");
    const echo = await c.client.callTool({
      name: "echo",
      arguments: { message: "through the proxy" },
    });
    assert.equal(text(echo), "Echo: through the proxy");
    const sum = await c.client.callTool({ name: "get-sum", arguments: { a: 19, b: 23 } });
    assert.match(text(sum), /\b42\b/);
    const progress: number[] = [];
    const long = await c.client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 3 } },
      undefined,
      { onprogress: (p) => progress.push(p.progress) },
    );
    assert.match(text(long), /Long running operation completed/);
    assert.deepEqual(progress, [1, 2, 3]);
    // npx starts node as a grandchild: both must be gone after shutdown.
    const family = descendants(proxy.process.pid);
    assert.ok(
      family.some((p) => p.command === "node" || p.command.startsWith("npm")),
      JSON.stringify(family),
    );
    groups = [...new Set(family.map((p) => p.pgid))];
    await c.close();
  } finally {
    const status = await proxy.stop();
    assert.equal(status.code, 0);
  }
  // SIGKILL was sent before the proxy exited; the kernel may take a moment to reap under load.
  await eventually(() => liveInGroups(groups).length === 0, 10_000, "the process groups to be gone")
    .catch(() => assert.deepEqual(liveInGroups(groups), []));
});
