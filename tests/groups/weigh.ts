/**
 * Measures each test file alone and writes tests/groups/weights.json, which tests/groups/lanes.ts
 * deals the files out by: its wall seconds and the CPU seconds the whole machine spent meanwhile
 * (its proxies, children, browsers and databases included), each less what the same run costs
 * with a filter that no test matches (starting `deno test` and its worker, and loading the file
 * and its modules: a lane pays that once, and the files in it share most modules). Run it on a
 * quiet machine after changing what a file starts or waits for (a file it does not list is
 * weighed by its size meanwhile):
 *
 *   deno run -A tests/groups/weigh.ts [tests/<file>.test.ts …]
 *
 * With files named, only those are measured again and the others keep their entries.
 */
import { testFiles } from "./files.ts";
import { type Weight, WEIGHTS_PATH } from "./lanes.ts";

const ROOT = new URL("../../", import.meta.url);
// The flags `deno task test` runs the files with (the proxy runs in-process with its own).
const task: string = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.test;
const flags = task.split(/\s+/).filter((word) => word.startsWith("--") && word !== "--parallel");

/** Busy CPU seconds of the whole machine so far (/proc/stat: all but idle and iowait). */
async function busySeconds(): Promise<number> {
  const fields = (await Deno.readTextFile("/proc/stat")).split("\n")[0].trim().split(/\s+/);
  const ticks = fields.slice(1, 9).map(Number);
  return (ticks.reduce((a, b) => a + b, 0) - ticks[3] - ticks[4]) / 100;
}

/** Runs no test (a filter nothing matches): what starting `deno test` and loading a file costs. */
const LOAD_ONLY = ["--filter", "weigh: no test has this name"];

/** Wall and machine CPU seconds of `deno test` on one file; null when it fails. */
async function measure(path: string, extra: string[] = []): Promise<Weight | null> {
  const busy = await busySeconds();
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", ...flags, ...extra, path],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!out.success) return null;
  return { seconds: (performance.now() - started) / 1000, cpu: (await busySeconds()) - busy };
}

const round = (n: number) => Math.max(0.01, Math.round(n * 100) / 100);

const previous: { files?: Record<string, Weight> } = await Deno.readTextFile(
  new URL(WEIGHTS_PATH, ROOT),
).then(JSON.parse, () => ({}));
const only = Deno.args.map((arg) => arg.replace(/^\.\//, ""));
const files: Record<string, Weight> = {};
const failed: string[] = [];
for (const url of await testFiles(new URL("tests/", ROOT))) {
  const path = url.slice(ROOT.href.length);
  const kept = previous.files?.[path];
  if (only.length > 0 && !only.includes(path) && kept) {
    files[path] = kept;
    continue;
  }
  const alone = await measure(path);
  const load = alone && await measure(path, LOAD_ONLY);
  if (!alone || !load) {
    // A failing file's time says nothing; it keeps its old entry, if any.
    failed.push(path);
    if (kept) files[path] = kept;
    continue;
  }
  files[path] = { seconds: round(alone.seconds - load.seconds), cpu: round(alone.cpu - load.cpu) };
  console.log(
    `${files[path].seconds.toFixed(2).padStart(6)} s ${
      files[path].cpu.toFixed(2).padStart(6)
    } s CPU  ${path}`,
  );
}
const json = {
  note: "each test file alone, less its run with no test: wall and machine CPU seconds " +
    "(deno run -A tests/groups/weigh.ts)",
  cores: navigator.hardwareConcurrency,
  files,
};
await Deno.writeTextFile(new URL(WEIGHTS_PATH, ROOT), JSON.stringify(json, null, 2) + "\n");
if (failed.length > 0) {
  console.error(`failed, so not measured (weigh passing files only): ${failed.join(", ")}`);
  Deno.exit(1);
}
