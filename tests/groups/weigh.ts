/**
 * Measures how long each end-to-end file takes alone and writes tests/groups/e2e-weights.json,
 * which tests/groups/e2e.ts deals the files out by. Run it on a quiet machine after changing what
 * a file starts or waits for (a file it does not list is weighed by its size meanwhile):
 *
 *   deno run -A tests/groups/weigh.ts
 */
import { testFiles } from "./files.ts";

const ROOT = new URL("../../", import.meta.url);
// The flags `deno task test` runs the files with (the proxy runs in-process with its own).
const task: string = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.test;
const flags = task.split(/\s+/).filter((word) => word.startsWith("--") && word !== "--parallel");
const seconds: Record<string, number> = {};
for (const url of await testFiles(new URL("tests/e2e/", ROOT))) {
  const path = url.slice(ROOT.href.length);
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", ...flags, path],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!out.success) throw new Error(`${path} failed: weigh passing files only`);
  seconds[path] = Math.round((performance.now() - started) / 100) / 10;
  console.log(`${seconds[path].toFixed(1).padStart(6)} s  ${path}`);
}
const json = {
  note: "wall seconds of each file alone: deno run -A tests/groups/weigh.ts",
  seconds,
};
await Deno.writeTextFile(
  new URL("tests/groups/e2e-weights.json", ROOT),
  JSON.stringify(json, null, 2) + "\n",
);
