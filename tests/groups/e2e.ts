/**
 * The end-to-end test files (`tests/e2e/**\/*.test.ts`) in a few test workers instead of one each:
 * `deno task test` runs `tests/groups/e2e-1.ts` … `e2e-<E2E_GROUPS>.ts`, and each imports its share
 * of the files. A worker costs about 0.3 s of CPU before its first test (see tests/groups/unit.ts),
 * and most of an end-to-end file's time is spent waiting for the processes it starts, so a handful
 * of workers each running its files one after another keeps both cores as busy as fifty workers
 * did. The files are dealt out by how long each takes alone (tests/groups/e2e-weights.json, written
 * by tests/groups/weigh.ts), longest first, each to the share with the least time so far, so the
 * shares end together; a file the table does not list yet is weighed by its size. One file alone
 * still runs with `deno test -A --unstable-kv --unstable-no-legacy-abort tests/e2e/<file>`.
 */
import { testFiles } from "./files.ts";

/** How many shares `deno task test` splits the end-to-end files into. */
export const E2E_GROUPS = 8;

const ROOT = new URL("../../", import.meta.url);

/** The files of share `k` (1 … E2E_GROUPS), as file URLs. */
export async function e2eShare(k: number): Promise<string[]> {
  const weighed = await weights();
  const shares = Array.from({ length: E2E_GROUPS }, () => ({ seconds: 0, urls: [] as string[] }));
  for (const file of weighed) {
    const lightest = shares.reduce((min, s) => (s.seconds < min.seconds ? s : min));
    lightest.seconds += file.seconds;
    lightest.urls.push(file.url);
  }
  // Longest first: the files that mostly wait run while the other workers still need the cores.
  return shares[k - 1].urls;
}

/** Every end-to-end file with its time alone (measured, else estimated from its size), longest first. */
async function weights(): Promise<{ url: string; seconds: number }[]> {
  const table: Record<string, number> = JSON.parse(
    await Deno.readTextFile(new URL("tests/groups/e2e-weights.json", ROOT)),
  ).seconds;
  const files = await Promise.all(
    (await testFiles(new URL("tests/e2e/", ROOT))).map(async (url) => ({
      url,
      measured: table[url.slice(ROOT.href.length)],
      size: (await Deno.stat(new URL(url))).size,
    })),
  );
  // Seconds per byte over the files the table knows, for those it does not.
  const known = files.filter((f) => f.measured !== undefined);
  const rate = known.reduce((sum, f) => sum + f.measured, 0) /
    Math.max(1, known.reduce((sum, f) => sum + f.size, 0));
  return files
    .map((f) => ({ url: f.url, seconds: f.measured ?? f.size * rate }))
    .sort((a, b) => b.seconds - a.seconds || (a.url < b.url ? -1 : 1));
}

/** Imports the files of share `k`, registering their tests in this worker. */
export async function runE2eShare(k: number): Promise<void> {
  for (const url of await e2eShare(k)) await import(url);
}
