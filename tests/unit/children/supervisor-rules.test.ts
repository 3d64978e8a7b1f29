/**
 * The supervisor's rules with a fake child (SupervisorOptions.spawn), an injected clock and an
 * injected random source: the handshake, start failures, backoff with jitter, the crash window,
 * crash-loop refusal, waiting for a restart, and the child limits (admit).
 */
import assert from "node:assert/strict";
import {
  Supervisor,
  type SupervisorEvents,
  type SupervisorOptions,
} from "../../../lib/children/supervisor.ts";
import { restartDelay, StartError, UnavailableError } from "../../../lib/children/lifecycle.ts";
import { SpawnError } from "../../../lib/children/child.ts";
import { createLogger } from "../../../lib/log.ts";
import { type FakeChildOptions, fakeSpawner } from "../../helpers/fake-child.ts";
import { eventually } from "../../helpers/procs.ts";

interface Recorded {
  lines: string[];
  ready: boolean[];
  exits: string[];
  messages: Record<string, unknown>[];
}

function setup(
  extra: Partial<SupervisorOptions> = {},
  child: FakeChildOptions | ((n: number) => FakeChildOptions) = {},
) {
  const fake = fakeSpawner(child);
  const seen: Recorded = { lines: [], ready: [], exits: [], messages: [] };
  const clock = { now: 1_000_000 };
  const events: SupervisorEvents = {
    onMessage: (message) => seen.messages.push(message),
    onExit: (description) => seen.exits.push(description),
    onReady: (restarted) => seen.ready.push(restarted),
  };
  const sup = new Supervisor({
    spec: { server: "t", command: "fake", args: [], env: {}, maxLineBytes: 1 << 20 },
    protocolVersion: "2025-06-18",
    clientInfo: { name: "test", version: "1" },
    initTimeoutMs: 30_000,
    restartDelayMs: 5,
    log: createLogger({ level: "debug", write: (line) => seen.lines.push(line) }),
    spawn: fake.spawn,
    now: () => clock.now,
    random: () => 0,
    ...extra,
  }, events);
  return { sup, fake, seen, clock };
}

Deno.test("restartDelay: doubles per exit from the base, adds up to 25 % jitter, never over max", () => {
  const none = () => 0;
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => restartDelay(n, 100, 60_000, none)), [
    100,
    200,
    400,
    800,
    1600,
  ]);
  assert.equal(restartDelay(1, 100, 60_000, () => 0.5), 113, "12.5 % jitter at random 0.5");
  assert.equal(restartDelay(3, 100, 60_000, () => 0.999999), 500, "at most 25 % more");
  assert.equal(restartDelay(20, 100, 1000, () => 0.999999), 1000, "capped at max, jitter included");
  assert.equal(restartDelay(0, 100, 60_000, none), 100, "no exit yet: the base");
});

Deno.test("handshake: initialize with the proxy's version, capabilities and clientInfo, then notifications/initialized", async () => {
  const { sup, fake, seen } = setup();
  const child = await sup.ready();
  assert.equal(child, fake.last);
  assert.equal(sup.state, "ready");
  const [init, initialized] = fake.last.received;
  assert.equal(init.method, "initialize");
  assert.deepEqual(init.params, {
    protocolVersion: "2025-06-18",
    capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
    clientInfo: { name: "test", version: "1" },
  });
  assert.deepEqual(initialized, { jsonrpc: "2.0", method: "notifications/initialized" });
  assert.deepEqual(sup.initResult?.serverInfo, { name: "fake", version: "1" });
  assert.deepEqual(seen.ready, [false]);
  assert.equal(await sup.ready(), child, "a ready child is reused");
  assert.equal(fake.children.length, 1);
  await sup.close();
});

Deno.test("only the ready child's messages reach the multiplexer; the initialize answer does not", async () => {
  const { sup, fake, seen } = setup({}, { init: "silent" });
  const ready = sup.ready();
  await eventually(() => fake.last?.received.length === 1, 5000, "initialize sent");
  const child = fake.last;
  child.emit({ method: "notifications/message", params: { level: "info", data: "early" } });
  child.emit({ id: child.received[0].id, result: { nope: true } });
  await assert.rejects(ready, /malformed initialize result/);
  assert.deepEqual(seen.messages, [], "nothing before ready");
  await sup.close();

  const second = setup();
  await second.sup.ready();
  second.fake.last.emit({ method: "notifications/tools/list_changed" });
  assert.deepEqual(second.seen.messages, [
    { jsonrpc: "2.0", method: "notifications/tools/list_changed" },
  ]);
  await second.sup.close();
});

for (
  const [init, error] of [
    ["refuse", /server "t" refused initialize: no thanks/],
    ["malformed", /server "t" sent a malformed initialize result/],
    ["exit", /server "t" exited during start-up \(code 3\): cannot start/],
  ] as const
) {
  Deno.test(`a failed start (${init}) rejects with StartError and ends the child`, async () => {
    const { sup, fake, seen } = setup({ restartDelayMs: 3_600_000 }, { init });
    await assert.rejects(sup.ready(), (e) => e instanceof StartError && error.test(e.message));
    assert.equal(fake.last.alive, false);
    assert.deepEqual(seen.exits, [], "onExit is for a child that was serving");
    assert.match(sup.lastError ?? "", error);
    await sup.close();
  });
}

Deno.test("initialize unanswered within initTimeoutMs: StartError naming the timeout", async () => {
  const { sup, fake } = setup({ initTimeoutMs: 20, restartDelayMs: 3_600_000 }, { init: "silent" });
  await assert.rejects(sup.ready(), /server "t" did not answer initialize within 0s/);
  assert.equal(fake.last.stopping, true, "the silent child is stopped");
  await sup.close();
});

Deno.test("a command that cannot start: SpawnError, the slot stays stopped, nothing is scheduled", async () => {
  const { sup, fake, seen } = setup();
  fake.state.fail = true;
  await assert.rejects(sup.ready(), SpawnError);
  assert.equal(sup.state, "stopped");
  assert.match(sup.lastError ?? "", /not found on PATH/);
  assert.ok(seen.lines.some((l) => l.includes("cannot start server")));
  fake.state.fail = false;
  await sup.ready();
  assert.equal(sup.state, "ready", "the next ready() tries again");
  await sup.close();
});

Deno.test("a child stopped during its start rejects the start", async () => {
  const { sup } = setup({}, { init: "silent" });
  const ready = sup.ready();
  await sup.stop("eviction");
  await assert.rejects(ready, (e) => e instanceof StartError);
  assert.equal(sup.state, "stopped");
  await sup.close();
});

Deno.test("backoff: each exit in the crash window doubles the delay, jittered by the random source", async () => {
  let random = 0;
  const { sup, fake, seen, clock } = setup({
    restartDelayMs: 10,
    crashLimit: 100,
    crashWindowMs: 60_000,
    random: () => random,
  });
  await sup.ready();
  const delays: number[] = [];
  for (let exit = 1; exit <= 4; exit++) {
    random = exit === 4 ? 0.5 : 0;
    clock.now += 1000;
    await fake.last.crash();
    assert.equal(sup.state, "restarting");
    delays.push(sup.retryAt - clock.now);
    await sup.ready();
  }
  assert.deepEqual(delays, [10, 20, 40, 90], "10·2ⁿ⁻¹, the last one with 12.5 % jitter");
  assert.deepEqual(seen.ready, [false, true, true, true, true], "restarted: true after an exit");
  assert.equal(seen.exits.length, 4, "onExit for each exit of a ready child");
  assert.equal(sup.restarts, 4);

  random = 0;
  clock.now += 60_000;
  await fake.last.crash();
  assert.equal(sup.retryAt - clock.now, 10, "exits outside the window are forgotten");
  await sup.close();
});

Deno.test("backoff is capped by maxRestartDelayMs", async () => {
  const { sup, fake, clock } = setup({
    restartDelayMs: 10,
    maxRestartDelayMs: 25,
    crashLimit: 100,
    random: () => 0.9,
  });
  await sup.ready();
  const delays: number[] = [];
  for (let exit = 1; exit <= 3; exit++) {
    await fake.last.crash();
    delays.push(sup.retryAt - clock.now);
    await sup.ready();
  }
  assert.deepEqual(delays, [12, 25, 25]);
  await sup.close();
});

Deno.test("crash loop: crashLimit exits in the window mark it unavailable; ready() refuses until the retry", async () => {
  const { sup, fake, seen, clock } = setup({ restartDelayMs: 40, crashLimit: 3 });
  await sup.ready();
  await fake.last.crash();
  await sup.ready();
  await fake.last.crash();
  await sup.ready();
  await fake.last.crash(7, "bad config");
  assert.equal(sup.state, "unavailable");
  assert.ok(seen.lines.some((l) => l.includes("server marked unavailable after repeated exits")));
  clock.now += 30;
  const refusal = await sup.ready().then(() => null, (e) => e);
  assert.ok(refusal instanceof UnavailableError, String(refusal));
  assert.match(refusal.message, /server "t" is unavailable after repeated crashes/);
  assert.match(refusal.message, /\(last: server "t" exited \(code 7\): bad config\)/);
  assert.equal(refusal.retryAfterMs, 160 - 30, "the time left until the scheduled retry");
  await eventually(() => sup.state === "ready", 5000, "the retry after the delay");
  assert.equal(fake.children.length, 4);
  await sup.close();
});

Deno.test("ready() while restarting waits for the restart and gets the new child", async () => {
  const { sup, fake } = setup({ restartDelayMs: 30 });
  const first = await sup.ready();
  await fake.last.crash();
  assert.equal(sup.state, "restarting");
  const second = await sup.ready();
  assert.notEqual(second, first);
  assert.equal(second, fake.last);
  assert.equal(sup.state, "ready");
  await sup.close();
});

Deno.test("ready() waiting for a distant restart starts a child at once when the slot is stopped", async () => {
  const { sup, fake } = setup({ restartDelayMs: 3_600_000 });
  await sup.ready();
  await fake.last.crash();
  const waiting = sup.ready();
  await sup.stop("evicted");
  // The fake child answers within microtasks: an event-driven wait is done before the next
  // macrotask, a polling one is not.
  const first = await Promise.race([
    waiting,
    new Promise((resolve) => setTimeout(() => resolve("a macrotask first"), 0)),
  ]);
  assert.equal(first, fake.children[1], "woken by the state change, without polling");
  await sup.close();
});

Deno.test("ready() waiting for a restart is refused when the supervisor closes", async () => {
  const { sup, fake } = setup({ restartDelayMs: 3_600_000 });
  await sup.ready();
  await fake.last.crash();
  const waiting = sup.ready();
  await sup.close();
  await assert.rejects(waiting, /the proxy is shutting down/);
  assert.equal(fake.children.length, 1);
});

Deno.test("limits: every start asks admit; a refused timer-driven restart is postponed, nothing spawns", async () => {
  let room = true;
  const { sup, fake, seen } = setup({
    restartDelayMs: 5,
    admit: () => {
      if (!room) throw new UnavailableError("no room (limits.childrenTotal)", 5000);
    },
  });
  await sup.ready();
  room = false;
  await fake.last.crash();
  await eventually(() => sup.state === "stopped", 5000, "the restart postponed");
  assert.ok(seen.lines.some((l) => l.includes("restart postponed until the next request")));
  assert.equal(fake.children.length, 1);
  await assert.rejects(sup.ready(), UnavailableError, "a start on demand asks admit too");
  assert.equal(fake.children.length, 1);
  room = true;
  await sup.ready();
  assert.equal(fake.children.length, 2);
  await sup.close();
});

Deno.test("a planned stop is not an exit: no restart, no onExit", async () => {
  const { sup, fake, seen } = setup();
  await sup.ready();
  await sup.stop("idle timeout");
  assert.equal(sup.state, "stopped");
  assert.equal(fake.last.stopping, true);
  assert.deepEqual(seen.exits, []);
  assert.equal(sup.send("{}"), false, "nothing to send to");
  await sup.close();
});
