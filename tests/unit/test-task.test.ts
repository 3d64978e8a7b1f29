/**
 * `deno task test` runs every test file once: the unit files through tests/groups/unit.ts (one
 * worker) or by name, everything else through a folder or a name on the task's command line.
 */
import assert from "node:assert/strict";
import { testFiles } from "../groups/files.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("deno task test: every *.test.ts under tests/ is run, and none twice", async () => {
  const task: string = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.test;
  const paths = task.split(/\s+/).filter((word) => word.startsWith("tests/"));
  const named = paths.filter((p) => p.endsWith(".ts"));
  const folders = paths.filter((p) => p.endsWith("/"));
  assert.ok(named.includes("tests/groups/unit.ts"), task);
  for (const file of await testFiles(new URL("tests/", ROOT))) {
    const path = file.slice(ROOT.href.length);
    const runs = [
      named.includes(path),
      folders.some((f) => path.startsWith(f)),
      path.startsWith("tests/unit/") && !named.includes(path), // through the group
    ].filter(Boolean).length;
    assert.equal(runs, 1, `${path} is run ${runs} times by: ${task}`);
  }
});
