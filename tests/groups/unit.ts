/**
 * The unit test files (`tests/unit/**\/*.test.ts`) in one test worker: `deno task test` runs this
 * file, plus the unit files it names itself (the long ones, which run alongside in workers of
 * their own), instead of each unit file on its own. Every test file `deno test` runs gets a worker,
 * and each worker costs about 0.3 s of CPU before its first test (Deno 2.9's test runtime
 * allocates a 10-million-element array for `Deno.bench` results in every worker,
 * ext:cli/40_bench.js); over the sixty-odd unit files that was a tenth of the suite's CPU. The
 * unit tests share no state through their modules. One file alone still runs with
 * `deno test tests/unit/<file>`.
 */
import { testFiles } from "./files.ts";

const task: string = JSON.parse(
  await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
).tasks.test;
const own = new Set(
  [...task.matchAll(/(?:^|\s)(tests\/unit\/\S+\.test\.ts)/g)].map((m) =>
    new URL(`../../${m[1]}`, import.meta.url).href
  ),
);
for (const file of await testFiles(new URL("../unit/", import.meta.url))) {
  if (!own.has(file)) await import(file);
}
