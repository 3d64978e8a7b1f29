/** SSE streams bounded for clients that do not read, and the global replay budget. */
import assert from "node:assert/strict";
import { SseRegistry, SseWriter } from "../../lib/mcp/sse.ts";
import { EventLog, ReplayBudget } from "../../lib/mcp/replay.ts";

const x = (n: number) => "x".repeat(n);

Deno.test("a stream whose client does not read is ended past its queue limit", async () => {
  const registry = new SseRegistry(100);
  const overflows: number[] = [];
  const writer = new SseWriter(registry, (queued) => overflows.push(queued));
  let closed = 0;
  writer.onClose(() => closed++);
  assert.equal(writer.write(x(60)), true);
  assert.equal(writer.queuedBytes, 60);
  assert.equal(writer.write(x(60)), false);
  assert.deepEqual(overflows, [120]);
  assert.equal(writer.overflowed, true);
  assert.equal(writer.closed, true);
  assert.equal(closed, 1);
  assert.equal(registry.size, 0);
  // The queue is discarded: the response ends with an error, not with the queued bytes.
  await assert.rejects(writer.body.getReader().read(), /not reading/);
  assert.equal(writer.write("more"), false);
  assert.deepEqual(overflows, [120]);
});

Deno.test("a reading client never reaches the queue limit", async () => {
  const registry = new SseRegistry(100);
  const writer = new SseWriter(registry, () => assert.fail("no overflow"));
  const reader = writer.body.getReader();
  for (let i = 0; i < 10; i++) {
    assert.equal(writer.write(x(60)), true);
    assert.equal((await reader.read()).value?.length, 60);
    assert.equal(writer.queuedBytes, 0);
  }
  writer.close();
  assert.equal((await reader.read()).done, true);
  assert.equal(writer.overflowed, false);
});

Deno.test("the replay budget drops the oldest events of any session first", () => {
  const budget = new ReplayBudget(100);
  const a = new EventLog(budget);
  const b = new EventLog(budget);
  a.push(1, 1, x(40), 0);
  b.push(1, 1, x(40), 1);
  assert.equal(budget.bytes, 80);
  b.push(1, 2, x(40), 2);
  // a's event was the oldest anywhere.
  assert.deepEqual(a.after(1, 0), []);
  assert.equal(a.oldest(1), null);
  assert.deepEqual(b.after(1, 0), [x(40), x(40)]);
  assert.equal(budget.bytes, 80);
  // An event larger than the whole budget is not kept at all.
  a.push(2, 1, x(150), 3);
  assert.deepEqual(a.after(2, 0), []);
  assert.ok(budget.bytes <= 100);
});

Deno.test("events of a finished stream and of an ended session stop counting", () => {
  const budget = new ReplayBudget(1000);
  const log = new EventLog(budget);
  log.push(1, 1, x(100));
  log.push(2, 1, x(100));
  log.push(1, 2, x(100));
  log.dropStream(1);
  assert.equal(budget.bytes, 100);
  assert.deepEqual(log.after(1, 0), []);
  assert.deepEqual(log.after(2, 0), [x(100)]);
  log.clear();
  assert.equal(budget.bytes, 0);
  assert.equal(log.length, 0);
});

Deno.test("the budget stays exact under churn of many sessions", () => {
  const budget = new ReplayBudget(10_000);
  const logs = Array.from({ length: 50 }, () => new EventLog(budget, 10));
  for (let i = 0; i < 20_000; i++) {
    const log = logs[i % logs.length];
    log.push(i % 3, i, x(10 + (i % 90)), i);
    if (i % 7 === 0) log.dropStream(i % 3);
    if (i % 1000 === 999) logs[(i / 1000) % logs.length | 0].clear();
    assert.ok(budget.bytes <= 10_000);
  }
  const held = logs.reduce(
    (sum, log) =>
      sum + [0, 1, 2].reduce((s, stream) => s + log.after(stream, -1).join("").length, 0),
    0,
  );
  assert.equal(budget.bytes, held);
});

Deno.test("a log keeps its own limits in count and age", () => {
  const log = new EventLog(null, 3, 1_000_000, 1000);
  for (let i = 1; i <= 5; i++) log.push(0, i, `e${i}`, 0);
  assert.deepEqual(log.after(0, 0), ["e3", "e4", "e5"]);
  log.push(0, 6, "e6", 2000);
  assert.deepEqual(log.after(0, 0), ["e6"]);
});
