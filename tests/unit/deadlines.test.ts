/** Deadlines: callbacks due a fixed delay after they were added, all on one timer. */
import assert from "node:assert/strict";
import { Deadlines } from "../../lib/mcp/deadlines.ts";

/**
 * Awaits `promise` with the event loop held open (the deadlines' timer never holds it); fails
 * after a generous 10 s (the delays here are tens of milliseconds).
 */
async function settled<T>(promise: Promise<T>): Promise<T> {
  let hold: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    hold = setTimeout(() => reject(new Error("the deadline never came")), 10_000);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(hold);
  }
}

Deno.test("deadlines run in the order added, each once; a cancelled one never runs", async () => {
  const deadlines = new Deadlines(30);
  const ran: string[] = [];
  const done = Promise.withResolvers<void>();
  deadlines.add(() => ran.push("a"));
  const cancel = deadlines.add(() => ran.push("b"));
  deadlines.add(() => {
    ran.push("c");
    done.resolve();
  });
  cancel();
  await settled(done.promise);
  assert.deepEqual(ran, ["a", "c"]);
  assert.equal(deadlines.size, 0);
});

Deno.test("an entry added after the first one was cancelled still comes due (the timer goes on)", async () => {
  const deadlines = new Deadlines(40);
  const cancelFirst = deadlines.add(() => assert.fail("cancelled"));
  // Added later: due later than the timer that was set for the first one.
  await new Promise((r) => setTimeout(r, 10));
  const second = Promise.withResolvers<void>();
  deadlines.add(() => second.resolve());
  cancelFirst();
  await settled(second.promise);
  assert.equal(deadlines.size, 0);
});

Deno.test("an entry is not run before its own delay, even when the timer fires for an earlier one", async () => {
  let clock = 0;
  const deadlines = new Deadlines(20, () => clock);
  const ran: string[] = [];
  const done = Promise.withResolvers<void>();
  deadlines.add(() => ran.push("early"));
  clock = 15; // the second is due at 35, after the timer set for the first (20)
  deadlines.add(() => {
    ran.push("late");
    done.resolve();
  });
  clock = 25; // when the timer fires: the first is due, the second not yet
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(ran, ["early"]);
  clock = 40;
  await settled(done.promise);
  assert.deepEqual(ran, ["early", "late"]);
});
