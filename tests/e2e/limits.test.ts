/** Limits and stdio hygiene: timeouts, cancellation, message sizes, noisy children, environment, queues. */
import assert from "node:assert/strict";
import { fixtureServer, startProxy } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";

Deno.test("a request that times out gets an error and the child gets notifications/cancelled", async () => {
  // The timeout also bounds the child's start (answering initialize): a loaded machine may take
  // seconds to start the fixture.
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer({ requestTimeout: "5s" }) } });
  try {
    const c = await connect(proxy.url("fx"));
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
    await proxy.waitForLog(/child stderr child="fx#1" text="fixture: cancelled \d+"/);
    assert.equal(
      text(await c.client.callTool({ name: "echo", arguments: { text: "still fine" } })),
      "still fine",
    );
    await c.close();
  } finally {
    await proxy.stop();
  }
});

Deno.test("a client's notifications/cancelled reaches the child with the rewritten id", async () => {
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer() } });
  try {
    const c = await connect(proxy.url("fx"));
    // Use up client ids so the client's id and the child's id differ.
    for (let i = 0; i < 3; i++) await c.client.ping();
    const abort = new AbortController();
    const call = c.client.callTool(
      { name: "slow", arguments: { ms: 120_000, announce: true } },
      undefined,
      { signal: abort.signal, timeout: 120_000 },
    );
    // Cancel once the child is working on it.
    await proxy.waitForLog(/child stderr child="fx#1" text="fixture: slow started \d+"/);
    abort.abort("changed my mind");
    await assert.rejects(call);
    const line = await proxy.waitForLog(/child stderr child="fx#1" text="fixture: cancelled \d+"/);
    const childId = Number(/cancelled (\d+)/.exec(line)![1]);
    // ping is answered by the proxy, so the child saw only tools/call: its id is 1.
    assert.equal(childId, 1);
    assert.equal(text(await c.client.callTool({ name: "add", arguments: { a: 1, b: 1 } })), "2");
    await c.close();
  } finally {
    await proxy.stop();
  }
});

Deno.test("a non-JSON stdout line is logged and skipped; an oversized line ends the child", async () => {
  const proxy = await startProxy({
    mcpServers: { fx: fixtureServer({ restartDelay: "100ms" }) },
    limits: { maxMessageOut: "64KiB" },
  });
  try {
    const c = await connect(proxy.url("fx"));
    assert.equal(text(await c.client.callTool({ name: "noise", arguments: {} })), "noisy");
    await proxy.waitForLog(/non-JSON line to stdout; skipped.*fixture noise: not json/);
    await assert.rejects(
      c.client.callTool({ name: "hugeline", arguments: { bytes: 200_000 } }),
      /exited .*stdout line over 65536 bytes/,
    );
    await proxy.waitForLog(/child wrote an oversized line; ending it/);
    assert.equal(
      text(await c.client.callTool({ name: "echo", arguments: { text: "back" } })),
      "back",
    );
    await c.close();
  } finally {
    await proxy.stop();
  }
});

Deno.test("children get a clean environment: the proxy's secrets are not inherited", async () => {
  const proxy = await startProxy(
    { mcpServers: { fx: fixtureServer({ env: { GIVEN: "yes" } }) } },
    { env: { PROXY_SECRET: "s3cret", PATH: Deno.env.get("PATH")!, HOME: Deno.env.get("HOME")! } },
  );
  try {
    const c = await connect(proxy.url("fx"));
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
  } finally {
    await proxy.stop();
  }
});

Deno.test("stderr is logged attributed to the child (child=<label> text=…) and rate-limited", async () => {
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer() } });
  try {
    const c = await connect(proxy.url("fx"));
    await c.client.callTool({ name: "stderr", arguments: { lines: 200 } });
    await proxy.waitForLog(/child stderr child="fx#1" text="fixture stderr line 1"$/);
    await c.client.callTool({ name: "stderr", arguments: { lines: 1 } });
    await new Promise((r) => setTimeout(r, 1100));
    await c.client.callTool({ name: "stderr", arguments: { lines: 1 } });
    await proxy.waitForLog(/child stderr rate-limited child="fx#1" dropped=\d+/);
    const logged = proxy.logs().split("\n").filter((l) =>
      /fixture stderr line \d+"$/.test(l)
    ).length;
    assert.ok(logged < 100, `only a bounded number of lines is logged (${logged})`);
    await c.close();
  } finally {
    await proxy.stop();
  }
});

Deno.test("requests over maxInFlight wait their turn and all complete", async () => {
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer({ maxInFlight: 2 }) } });
  try {
    const c = await connect(proxy.url("fx"));
    const results = await Promise.all(
      Array.from(
        { length: 9 },
        (_, i) => c.client.callTool({ name: "slow", arguments: { ms: 30 + i } }),
      ),
    );
    assert.deepEqual(results.map(text), Array.from({ length: 9 }, (_, i) => `slept ${30 + i}`));
    await c.close();
  } finally {
    await proxy.stop();
  }
});

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
    const c = await connect(proxy.url("c"));
    await proxy.waitForLog(
      /stopping the least recently used child.*child="a#1" limit=childrenTotal/,
    );
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
