/** The bounded asynchronous log queue: writes never block the caller; overflow is counted. */
import assert from "node:assert/strict";
import { LogQueue } from "../../lib/log-queue.ts";

/** An output that accepts nothing until `open()` (a pipe nobody reads), then everything. */
function stalledOutput() {
  let release = () => {};
  const gate = new Promise<void>((resolve) => release = resolve);
  const written: string[] = [];
  const decoder = new TextDecoder();
  return {
    written,
    open: release,
    output: async (bytes: Uint8Array) => {
      await gate;
      written.push(decoder.decode(bytes));
      return bytes.length;
    },
  };
}

Deno.test("past maxBytes lines are dropped and counted; the report line follows once drained", async () => {
  const out = stalledOutput();
  const queue = new LogQueue(out.output, {
    maxBytes: 100,
    reportEveryMs: 60_000,
    report: (n) => `${n} log lines dropped\n`,
  });
  const line = "x".repeat(19) + "\n";
  const accepted = Array.from({ length: 10 }, () => queue.push(line));
  assert.deepEqual(accepted, [true, true, true, true, true, false, false, false, false, false]);
  assert.equal(queue.dropped, 5);
  out.open();
  await queue.flush(5000);
  const text = out.written.join("");
  assert.equal(text, line.repeat(5) + "5 log lines dropped\n");
  assert.equal(queue.dropped, 5, "the total stays; only the unreported count resets");
  queue.close();
});

Deno.test("once the output has caught up, the drop report is written without waiting for the period", async () => {
  const out = stalledOutput();
  let reported = () => {};
  const done = new Promise<void>((resolve) => reported = resolve);
  const output = async (bytes: Uint8Array) => {
    const n = await out.output(bytes);
    if (out.written.join("").includes("dropped")) reported();
    return n;
  };
  const queue = new LogQueue(output, { maxBytes: 40, reportEveryMs: 3_600_000 });
  const line = "y".repeat(19) + "\n";
  assert.deepEqual([queue.push(line), queue.push(line), queue.push(line)], [true, true, false]);
  out.open();
  // No flush (which reports too) and an hour-long period: only catching up can write it. Without
  // the report the test ends with this promise pending, which fails it.
  await done;
  assert.equal(out.written.join(""), line.repeat(2) + "1 log lines dropped\n");
  queue.close();
});

Deno.test("a short write is continued; a failed output drops the rest without throwing", async () => {
  const seen: string[] = [];
  const decoder = new TextDecoder();
  const halves = new LogQueue((bytes) => {
    const n = Math.max(1, Math.floor(bytes.length / 2));
    seen.push(decoder.decode(bytes.subarray(0, n)));
    return Promise.resolve(n);
  });
  halves.push("hello world\n");
  await halves.flush(5000);
  assert.equal(seen.join(""), "hello world\n");
  halves.close();

  const broken = new LogQueue(() => Promise.reject(new Error("Broken pipe (os error 32)")));
  broken.push("a\n");
  broken.push("b\n");
  await broken.flush(5000);
  assert.equal(broken.dropped, 2);
  assert.equal(broken.push("c\n"), false);
  broken.close();
});

Deno.test("flush gives up after its time when the output never drains", async () => {
  const out = stalledOutput();
  const queue = new LogQueue(out.output);
  queue.push("stuck\n");
  await queue.flush(50);
  assert.deepEqual(out.written, []);
  out.open();
  await queue.flush(5000);
  assert.deepEqual(out.written, ["stuck\n"]);
  queue.close();
});

Deno.test("the report is queued periodically, only when lines were dropped", async () => {
  const out = stalledOutput();
  out.open();
  const queue = new LogQueue(out.output, { maxBytes: 4, reportEveryMs: 20 });
  queue.push("abc\n");
  queue.push("def\n");
  await new Promise((r) => setTimeout(r, 100));
  await queue.flush(5000);
  assert.deepEqual(out.written.join("").split("\n").filter(Boolean), [
    "abc",
    "1 log lines dropped",
  ]);
  queue.close();
});

Deno.test("lines logged moments apart share one write", async () => {
  const writes: string[] = [];
  const decoder = new TextDecoder();
  const queue = new LogQueue((bytes) => {
    writes.push(decoder.decode(bytes));
    return Promise.resolve(bytes.length);
  });
  queue.push("access\n");
  await new Promise((r) => setTimeout(r, 1));
  queue.push("audit\n");
  await queue.flush(5000);
  assert.deepEqual(writes, ["access\naudit\n"]);
  queue.close();
});
