/**
 * Limits and stdio hygiene: timeouts, cancellation, message sizes, noisy children, environment,
 * queues. One proxy serves the tests of per-server settings, each on a server of its own;
 * childrenTotal, a limit of the whole proxy, gets its own.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";

Deno.test("limits of a server's child", async (t) => {
  const proxy = await startProxy(
    {
      mcpServers: {
        // The timeout also bounds the child's start (answering initialize): a loaded machine may
        // take seconds to start the fixture.
        timeout: fixtureServer({ requestTimeout: "5s" }),
        cancel: fixtureServer(),
        lines: fixtureServer({ restartDelay: "100ms" }),
        env: fixtureServer({ env: { GIVEN: "yes" } }),
        stderr: fixtureServer(),
        queue: fixtureServer({ maxInFlight: 2 }),
      },
      limits: { maxMessageOut: "64KiB" },
    },
    { env: { PROXY_SECRET: "s3cret", PATH: Deno.env.get("PATH")!, HOME: Deno.env.get("HOME")! } },
  );
  try {
    await t.step(
      "a request that times out gets an error and the child gets notifications/cancelled",
      () => timesOut(proxy),
    );
    await t.step(
      "a client's notifications/cancelled reaches the child with the rewritten id",
      () => cancelledByClient(proxy),
    );
    await t.step(
      "a non-JSON stdout line is logged and skipped; an oversized line ends the child",
      () => stdoutLines(proxy),
    );
    await t.step(
      "children get a clean environment: the proxy's secrets are not inherited",
      () => cleanEnvironment(proxy),
    );
    await t.step(
      "stderr is logged attributed to the child (child=<label> text=…) and rate-limited",
      () => stderrRateLimited(proxy),
    );
    await t.step(
      "requests over maxInFlight wait their turn and all complete",
      () => queued(proxy),
    );
  } finally {
    await proxy.stop();
  }
});

async function timesOut(proxy: ProxyProcess) {
  const c = await connect(proxy.url("timeout"));
  await assert.rejects(
    c.client.callTool({ name: "slow", arguments: { ms: 120_000 } }, undefined, {
      timeout: 60_000,
    }),
    (error: Error & { code?: number }) => {
      assert.equal(error.code, -32001);
      assert.match(error.message, /request timed out after 5s/);
      return true;
    },
  );
  // The fixture logs the id it saw: the proxy's rewritten one.
  await proxy.waitForLog(/child stderr child="timeout#\d+" text="fixture: cancelled \d+"/);
  assert.equal(
    text(await c.client.callTool({ name: "echo", arguments: { text: "still fine" } })),
    "still fine",
  );
  await c.close();
}

async function cancelledByClient(proxy: ProxyProcess) {
  const c = await connect(proxy.url("cancel"));
  // Use up client ids so the client's id and the child's id differ.
  for (let i = 0; i < 3; i++) await c.client.ping();
  const abort = new AbortController();
  const call = c.client.callTool(
    { name: "slow", arguments: { ms: 120_000, announce: true } },
    undefined,
    { signal: abort.signal, timeout: 120_000 },
  );
  // Cancel once the child is working on it.
  await proxy.waitForLog(/child stderr child="cancel#\d+" text="fixture: slow started \d+"/);
  abort.abort("changed my mind");
  await assert.rejects(call);
  const line = await proxy.waitForLog(
    /child stderr child="cancel#\d+" text="fixture: cancelled \d+"/,
  );
  const childId = Number(/cancelled (\d+)/.exec(line)![1]);
  // ping is answered by the proxy, so the child saw only tools/call: its id is 1.
  assert.equal(childId, 1);
  assert.equal(text(await c.client.callTool({ name: "add", arguments: { a: 1, b: 1 } })), "2");
  await c.close();
}

async function stdoutLines(proxy: ProxyProcess) {
  const c = await connect(proxy.url("lines"));
  assert.equal(text(await c.client.callTool({ name: "noise", arguments: {} })), "noisy");
  await proxy.waitForLog(/non-JSON line to stdout; skipped.*lines#\d+.*fixture noise: not json/);
  await assert.rejects(
    c.client.callTool({ name: "hugeline", arguments: { bytes: 200_000 } }),
    /exited .*stdout line over 65536 bytes/,
  );
  await proxy.waitForLog(/child wrote an oversized line; ending it.*lines#\d+/);
  assert.equal(
    text(await c.client.callTool({ name: "echo", arguments: { text: "back" } })),
    "back",
  );
  await c.close();
}

async function cleanEnvironment(proxy: ProxyProcess) {
  const c = await connect(proxy.url("env"));
  const names: string[] = JSON.parse(
    text(await c.client.callTool({ name: "env", arguments: {} })),
  );
  assert.ok(names.includes("GIVEN"));
  assert.ok(names.includes("PATH") && names.includes("HOME"));
  assert.ok(!names.includes("PROXY_SECRET"));
  const allowed = new Set(["GIVEN", "PATH", "HOME", "USER", "LANG", "TZ"]);
  for (const name of names) {
    assert.ok(allowed.has(name) || name.startsWith("LC_"), `unexpected ${name}`);
  }
  await c.close();
}

async function stderrRateLimited(proxy: ProxyProcess) {
  const c = await connect(proxy.url("stderr"));
  await c.client.callTool({ name: "stderr", arguments: { lines: 200 } });
  await proxy.waitForLog(/child stderr child="stderr#\d+" text="fixture stderr line 1"$/);
  // The count of dropped lines is reported with the first line of a later second: write one
  // line at a time until it is.
  const reported = /child stderr rate-limited child="stderr#\d+" dropped=\d+/;
  for (let i = 0; i < 300 && !reported.test(proxy.logs()); i++) {
    await c.client.callTool({ name: "stderr", arguments: { lines: 1 } });
    await new Promise((r) => setTimeout(r, 100));
  }
  await proxy.waitForLog(reported);
  const logged =
    proxy.logs().split("\n").filter((l) =>
      /child="stderr#\d+" text="fixture stderr line \d+"$/.test(l)
    ).length;
  assert.ok(logged < 100, `only a bounded number of lines is logged (${logged})`);
  await c.close();
}

async function queued(proxy: ProxyProcess) {
  const c = await connect(proxy.url("queue"));
  const results = await Promise.all(
    Array.from(
      { length: 9 },
      (_, i) => c.client.callTool({ name: "slow", arguments: { ms: 30 + i } }),
    ),
  );
  assert.deepEqual(results.map(text), Array.from({ length: 9 }, (_, i) => `slept ${30 + i}`));
  await c.close();
}

Deno.test("childrenTotal: starting one more child stops the least recently used idle one", async () => {
  const proxy = await startProxy({
    mcpServers: { a: fixtureServer(), b: fixtureServer(), c: fixtureServer() },
    limits: { childrenTotal: 2 },
  });
  try {
    const a = await connect(proxy.url("a"));
    await a.client.callTool({ name: "echo", arguments: { text: "a" } });
    const b = await connect(proxy.url("b"));
    await b.client.callTool({ name: "echo", arguments: { text: "b" } });
    // Child ids count the children of the whole process (an in-process proxy shares its count).
    const started = await proxy.waitForLog(/child started child="a#\d+"/);
    const childA = /child="(a#\d+)"/.exec(started)![1];
    const c = await connect(proxy.url("c"));
    const stopping = await proxy.waitForLog(/stopping the least recently used child/);
    assert.match(stopping, new RegExp(`child="${childA}" limit=childrenTotal`));
    assert.equal(text(await c.client.callTool({ name: "echo", arguments: { text: "c" } })), "c");
    const health = await (await fetch(`${proxy.admin}/healthz`)).json();
    const running = Object.values(health.servers as Record<string, { state: string }>).filter((s) =>
      s.state === "running"
    );
    assert.equal(running.length, 2);
    await Promise.all([a.close(), b.close(), c.close()]);
  } finally {
    await proxy.stop();
  }
});
