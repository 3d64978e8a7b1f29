import assert from "node:assert/strict";
import { coalesce } from "../../lib/coalesce.ts";

/** A task whose runs finish only when the test says so; records what each run saw. */
function gatedTask(read: () => string) {
  const runs: Array<{ saw: string; finish: () => void; done: boolean }> = [];
  let active = 0;
  let maxActive = 0;
  const task = async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    const { promise, resolve } = Promise.withResolvers<void>();
    const run = { saw: read(), finish: resolve, done: false };
    runs.push(run);
    await promise;
    run.done = true;
    active--;
  };
  return { task, runs, maxActive: () => maxActive };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("coalesce: runs never overlap; calls during a run collapse into one run after it", async () => {
  let config = "v1";
  const { task, runs, maxActive } = gatedTask(() => config);
  const reload = coalesce(task);
  const first = reload();
  config = "v2";
  const second = reload();
  config = "v3";
  const third = reload();
  assert.equal(runs.length, 1, "the second and third calls wait for the first run");
  runs[0].finish();
  await first;
  await tick();
  assert.equal(runs.length, 2);
  assert.equal(runs[1].saw, "v3", "the follow-up run starts after the last call");
  runs[1].finish();
  await Promise.all([second, third]);
  assert.equal(runs.length, 2);
  assert.equal(maxActive(), 1);
});

Deno.test("coalesce: the last call wins even when the first run is the slow one", async () => {
  let config = "old";
  let applied = "";
  const delays = [50, 0];
  const reload = coalesce(async () => {
    const seen = config;
    await new Promise((r) => setTimeout(r, delays.shift() ?? 0));
    applied = seen;
  });
  const a = reload();
  config = "new";
  const b = reload();
  await Promise.all([a, b]);
  assert.equal(applied, "new");
});

Deno.test("coalesce: a failed run rejects its callers and does not block the next one", async () => {
  const outcomes = [true, false, false];
  const reload = coalesce(async () => {
    const fail = outcomes.shift();
    await tick();
    if (fail) throw new Error("broken file");
  });
  const a = reload();
  const b = reload();
  await assert.rejects(a, /broken file/);
  await b;
  await reload();
});
