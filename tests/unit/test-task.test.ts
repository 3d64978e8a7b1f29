/**
 * `deno task test` runs every test file once, through the lanes of tests/groups/lanes.ts (one
 * test worker each, all at once), and the dealing keeps its promises: every file in exactly one
 * lane, the lanes ending together as far as the weights tell.
 */
import assert from "node:assert/strict";
import {
  deal,
  type Job,
  lane,
  LANES,
  simulate,
  weighedFiles,
  WEIGHTS_PATH,
} from "../groups/lanes.ts";
import { testFiles } from "../groups/files.ts";

const ROOT = new URL("../../", import.meta.url);

const job = (url: string, seconds: number, cpu: number): Job => ({ url, seconds, cpu });

Deno.test("deno task test: every *.test.ts under tests/ is run, and none twice", async () => {
  const task: string = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.test;
  const named = task.split(/\s+/).filter((word) => word.startsWith("tests/"));
  const lanes = Array.from({ length: LANES }, (_, i) => `tests/groups/lane-${i + 1}.ts`);
  assert.deepEqual(named, lanes, "the task runs the lanes and nothing else");
  assert.match(task, new RegExp(`^DENO_JOBS=${LANES} deno test --parallel `), "one worker a lane");
  const dealt: string[] = [];
  for (let k = 1; k <= LANES; k++) dealt.push(...await lane(k));
  const files = await testFiles(new URL("tests/", ROOT));
  assert.deepEqual([...dealt].sort(), files, "each file in exactly one lane");
});

Deno.test("the lanes dealt from weights.json are predicted to end together", async () => {
  const { jobs, cores } = await weighedFiles();
  const ends = simulate(deal(jobs, LANES, cores), cores);
  // No schedule ends before the CPU is spent or before the longest file has run.
  const cpu = jobs.reduce((sum, j) => sum + j.cpu, 0);
  const bound = Math.max(cpu / cores, ...jobs.map((j) => j.seconds));
  assert.ok(Math.max(...ends) <= bound * 1.05, `ends ${ends}, bound ${bound}`);
});

Deno.test("weights.json weighs only test files that exist, with wall and CPU seconds", async () => {
  const table = JSON.parse(await Deno.readTextFile(new URL(WEIGHTS_PATH, ROOT)));
  const files = new Set(
    (await testFiles(new URL("tests/", ROOT))).map((url) => url.slice(ROOT.href.length)),
  );
  const stale = Object.keys(table.files).filter((path) => !files.has(path));
  assert.deepEqual(stale, [], "remove them, or run: deno run -A tests/groups/weigh.ts");
  assert.ok(Number.isInteger(table.cores) && table.cores > 0);
  for (const weight of Object.values(table.files) as Job[]) {
    assert.ok(weight.seconds > 0 && weight.cpu > 0, JSON.stringify(weight));
  }
});

Deno.test("simulate: lanes share the cores, slowing alike only while they ask for more", () => {
  // Two lanes on two cores never contend: each ends after its own seconds.
  assert.deepEqual(simulate([[job("a", 3, 3)], [job("b", 2, 2), job("c", 1, 1)]], 2), [3, 3]);
  // Three busy lanes on two cores run at 2/3 speed until one ends, then at full speed.
  const ends = simulate([[job("a", 2, 2)], [job("b", 2, 2)], [job("c", 4, 4)]], 2);
  assert.deepEqual(ends.map((t) => Math.round(t * 100) / 100), [3, 3, 5]);
  // A file that only waits asks for no core and is not slowed.
  assert.deepEqual(simulate([[job("w", 5, 0)], [job("b", 4, 4)], [job("c", 4, 4)]], 2), [5, 4, 4]);
  assert.deepEqual(simulate([[], [job("a", 1, 1)]], 2), [0, 1]);
});

Deno.test("deal: most CPU first, each file where the run then ends soonest", () => {
  const jobs = [
    job("busy-1", 4, 4),
    job("busy-2", 4, 4),
    job("busy-3", 4, 4),
    job("wait-1", 4, 0),
    job("wait-2", 4, 0),
  ];
  // Three busy files on two cores end together at 6. A waiting file goes before a busy one, so
  // that the busy ones run while it waits (after it, the lane would end at 10); the second
  // waiting file, in that lane too, would make it end at 12.
  const lanes = deal(jobs, 3, 2);
  assert.deepEqual(lanes.map((l) => l.map((j) => j.url)), [
    ["wait-1", "busy-1"],
    ["wait-2", "busy-2"],
    ["busy-3"],
  ]);
  assert.deepEqual(simulate(lanes, 2), [8, 8, 4]);
  // Every file is dealt once, whatever the count of lanes.
  for (const count of [1, 2, 4, 7]) {
    const urls = deal(jobs, count, 2).flat().map((j) => j.url).sort();
    assert.deepEqual(urls, jobs.map((j) => j.url).sort());
  }
});
