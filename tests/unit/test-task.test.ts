/**
 * `deno task test` runs every test file once: the unit files through tests/groups/unit.ts (one
 * worker) or by name, the end-to-end files through the shares of tests/groups/e2e.ts, anything
 * else through a folder or a name on the task's command line.
 */
import assert from "node:assert/strict";
import { E2E_GROUPS, e2eShare } from "../groups/e2e.ts";
import { testFiles } from "../groups/files.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("deno task test: every *.test.ts under tests/ is run, and none twice", async () => {
  const task: string = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.test;
  const paths = task.split(/\s+/).filter((word) => word.startsWith("tests/"));
  const named = paths.filter((p) => p.endsWith(".ts"));
  const folders = paths.filter((p) => p.endsWith("/"));
  assert.ok(named.includes("tests/groups/unit.ts"), task);
  const shared: string[] = [];
  for (let k = 1; k <= E2E_GROUPS; k++) {
    assert.ok(named.includes(`tests/groups/e2e-${k}.ts`), `share ${k} is not run by: ${task}`);
    shared.push(...await e2eShare(k));
  }
  for (const file of await testFiles(new URL("tests/", ROOT))) {
    const path = file.slice(ROOT.href.length);
    const runs = [
      named.includes(path),
      folders.some((f) => path.startsWith(f)),
      path.startsWith("tests/unit/") && !named.includes(path), // through the group
      ...shared.filter((url) => url === file), // through an end-to-end share
    ].filter(Boolean).length;
    assert.equal(runs, 1, `${path} is run ${runs} times by: ${task}`);
  }
});

Deno.test("each end-to-end share runs its files longest first", async () => {
  const table = JSON.parse(await Deno.readTextFile(new URL("tests/groups/e2e-weights.json", ROOT)));
  for (let k = 1; k <= E2E_GROUPS; k++) {
    const seconds = (await e2eShare(k))
      .map((url) => table.seconds[url.slice(ROOT.href.length)])
      .filter((s) => s !== undefined);
    assert.deepEqual(seconds, [...seconds].sort((a, b) => b - a), `share ${k}`);
  }
});

Deno.test("e2e-weights.json weighs only end-to-end files that exist", async () => {
  const table = JSON.parse(await Deno.readTextFile(new URL("tests/groups/e2e-weights.json", ROOT)));
  const files = new Set(
    (await testFiles(new URL("tests/e2e/", ROOT))).map((url) => url.slice(ROOT.href.length)),
  );
  const stale = Object.keys(table.seconds).filter((path) => !files.has(path));
  assert.deepEqual(stale, [], "remove them, or run: deno run -A tests/groups/weigh.ts");
  for (const seconds of Object.values(table.seconds)) assert.ok(Number(seconds) > 0);
});
