/**
 * Every fixture feature through /mcp/<name> (Streamable HTTP) and /sse/<name> (legacy SSE), on
 * one proxy: each transport's test has its own session.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";

Deno.test("every fixture feature through both transports", async (t) => {
  // A step stalls the proxy's process (SIGSTOP).
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer() } }, { process: true });
  try {
    for (const transport of ["streamable", "sse"] as const) {
      await t.step(
        `${transport}: initialize, tools, progress, logs, sampling, elicitation, roots, resource, prompt`,
        () => everyFeature(proxy, transport),
      );
    }
  } finally {
    await proxy.stop();
  }
});

async function everyFeature(proxy: ProxyProcess, transport: "streamable" | "sse") {
  const c = await connect(proxy.url("fx"), { transport, answer: true, name: "alice" });
  assert.equal(c.client.getServerVersion()?.name, "fixture");
  assert.equal(c.client.getInstructions(), "Fixture server for mcp-oauth-proxy tests.");
  const tools = (await c.client.listTools()).tools.map((t) => t.name);
  for (
    const name of [
      "echo",
      "add",
      "progress",
      "fail",
      "crash",
      "sample",
      "elicit",
      "log",
      "big",
      "toggle",
    ]
  ) {
    assert.ok(tools.includes(name), `tools/list has ${name}`);
  }
  assert.equal(
    text(await c.client.callTool({ name: "echo", arguments: { text: "héllo" } })),
    "héllo",
  );
  assert.equal(
    text(await c.client.callTool({ name: "add", arguments: { a: 2, b: 40 } })),
    "42",
  );

  // The proxy stalls after the first step, as on a loaded machine: the other steps and the
  // result then reach the client in one read, and must still arrive in order.
  const progress: number[] = [];
  const result = await c.client.callTool(
    { name: "progress", arguments: { steps: 4, delayMs: 25 } },
    undefined,
    {
      onprogress: (p) => {
        progress.push(p.progress);
        if (p.progress === 1) stall(proxy.process.pid, 300);
      },
    },
  );
  assert.equal(text(result), "done 4");
  assert.deepEqual(progress, [1, 2, 3, 4]);

  const failed = await c.client.callTool({ name: "fail", arguments: {} });
  assert.equal(failed.isError, true);
  assert.equal(text(failed), "intentional failure");

  assert.equal(
    text(await c.client.callTool({ name: "sample", arguments: { prompt: "hi" } })),
    "sampled: reply to hi",
  );
  assert.equal(
    text(await c.client.callTool({ name: "elicit", arguments: { message: "ok?" } })),
    "elicited: accept alice says yes",
  );
  assert.equal(
    text(await c.client.callTool({ name: "roots", arguments: {} })),
    'roots: ["file:///roots/alice"]',
  );

  assert.equal(
    text(await c.client.callTool({ name: "log", arguments: { message: "note 1" } })),
    "logged",
  );
  assert.deepEqual(c.logs, ["note 1"]);

  const big = text(await c.client.callTool({ name: "big", arguments: { bytes: 1024 * 1024 } }));
  assert.equal(big.length, 1024 * 1024);

  const resource = await c.client.readResource({ uri: "fixture://greeting" });
  assert.equal((resource.contents[0] as { text: string }).text, "hello from the fixture");
  const prompt = await c.client.getPrompt({ name: "greet", arguments: { name: "Bob" } });
  assert.deepEqual(prompt.messages[0].content, { type: "text", text: "Please greet Bob." });

  await c.client.ping();
  await c.close();
}

/** Stops a process for `ms` (SIGSTOP, then SIGCONT): what it would have read piles up meanwhile. */
function stall(pid: number, ms: number): void {
  Deno.kill(pid, "SIGSTOP");
  setTimeout(() => Deno.kill(pid, "SIGCONT"), ms);
}
