/** Every way out runs the shutdown once; the connection cap fits the open-file limit. */
import assert from "node:assert/strict";
import { Lifecycle } from "../../lib/lifecycle.ts";
import { createLogger } from "../../lib/log.ts";
import { connectionBudget, freeFileDescriptors } from "../../lib/open-files.ts";

function target(shutdown: () => Promise<void> = () => Promise.resolve()) {
  const lines: string[] = [];
  let calls = 0;
  return {
    lines,
    calls: () => calls,
    log: createLogger({ write: (l) => void lines.push(l) }),
    shutdown: () => {
      calls++;
      return shutdown();
    },
  };
}

Deno.test("a stop before the proxy is up is carried out once it is; later stops join the first", async () => {
  const exits: number[] = [];
  const life = new Lifecycle({ exit: (code) => void exits.push(code) });
  await life.stop(0, "received SIGTERM");
  assert.deepEqual(exits, []);
  const t = target();
  life.started(t);
  await life.stop(1, "the listener ended");
  assert.equal(t.calls(), 1);
  assert.deepEqual(exits, [0], "the first reason's code wins");
  assert.ok(t.lines.some((l) => /stopping reason="received SIGTERM"/.test(l)));
});

Deno.test("an uncaught error and an unhandled rejection run the shutdown and exit 1", async () => {
  for (const event of ["error", "unhandledrejection"] as const) {
    const exits: number[] = [];
    let flushed = 0;
    const life = new Lifecycle({
      exit: (code) => void exits.push(code),
      flush: () => Promise.resolve(void flushed++),
    });
    const t = target();
    life.started(t);
    const remove = life.install({ signals: false });
    try {
      const error = new Error(`boom ${event}`);
      const e = event === "error"
        ? new ErrorEvent("error", { error, cancelable: true })
        : new PromiseRejectionEvent("unhandledrejection", {
          promise: Promise.resolve(),
          reason: error,
          cancelable: true,
        });
      globalThis.dispatchEvent(e);
      assert.ok(e.defaultPrevented, "Deno's default (exit without shutdown) is prevented");
      await life.stop(0, "again");
      assert.equal(t.calls(), 1);
      assert.deepEqual(exits, [1]);
      assert.equal(flushed, 1, "queued log lines are written before the exit");
      assert.ok(t.lines.some((l) => l.includes(`boom ${event}`)));
    } finally {
      remove();
    }
  }
});

Deno.test("a shutdown that hangs past the deadline still exits, with code 1", async () => {
  const exits: number[] = [];
  const life = new Lifecycle({ exit: (code) => void exits.push(code), deadlineMs: 20 });
  const t = target(() => new Promise(() => {}));
  life.started(t);
  await life.stop(0, "received SIGINT");
  assert.deepEqual(exits, [1]);
  assert.ok(t.lines.some((l) => /shutdown did not finish in time/.test(l)));
});

Deno.test("the connection cap leaves room for children and the store within the free descriptors", () => {
  const plenty = connectionBudget(1024, 160, (enough) => enough);
  assert.deepEqual(plenty, { max: 1024, free: 1184, atLeast: true });
  // ulimit -n 256 leaves about 232 free.
  assert.deepEqual(connectionBudget(1024, 160, () => 232), { max: 72, free: 232, atLeast: false });
  assert.equal(connectionBudget(1024, 160, () => 100).max, 50, "almost nothing left: half");
  assert.equal(connectionBudget(1024, 160, () => 1).max, 1);
  assert.equal(connectionBudget(10, 160, () => 232).max, 10, "never above the configured cap");
  assert.deepEqual(connectionBudget(1024, 160, () => null), {
    max: 1024,
    free: null,
    atLeast: false,
  });
});

Deno.test("free descriptors are counted by opening /dev/null, and all are closed again", () => {
  const first = freeFileDescriptors(64);
  assert.equal(first, 64, "stops at the number asked for");
  assert.equal(freeFileDescriptors(64), 64, "nothing stayed open");
});
