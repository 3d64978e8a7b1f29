/**
 * The end-to-end test files (`tests/e2e/**\/*.test.ts`) in a few test workers instead of one each:
 * `deno task test` runs `tests/groups/e2e-1.ts` … `e2e-<E2E_GROUPS>.ts`, and each imports its share
 * of the files. A worker costs about 0.3 s of CPU before its first test (see tests/groups/unit.ts),
 * and most of an end-to-end file's time is spent waiting for the processes it starts, so a handful
 * of workers each running its files one after another keeps both cores as busy as fifty workers
 * did. The files are dealt out by size, largest first, each to the share with the fewest bytes so
 * far: a rough measure of cost, but it needs no table to keep up to date, and a new file joins a
 * share by itself. One file alone still runs with `deno test -A --unstable-kv tests/e2e/<file>`.
 */
import { testFiles } from "./files.ts";

/** How many shares `deno task test` splits the end-to-end files into. */
export const E2E_GROUPS = 8;

/** The files of share `k` (1 … E2E_GROUPS), as file URLs. */
export async function e2eShare(k: number): Promise<string[]> {
  const files = await testFiles(new URL("../e2e/", import.meta.url));
  const sized = await Promise.all(
    files.map(async (url) => ({ url, size: (await Deno.stat(new URL(url))).size })),
  );
  sized.sort((a, b) => b.size - a.size || (a.url < b.url ? -1 : 1));
  const shares = Array.from({ length: E2E_GROUPS }, () => ({ bytes: 0, urls: [] as string[] }));
  for (const file of sized) {
    const lightest = shares.reduce((min, s) => (s.bytes < min.bytes ? s : min));
    lightest.bytes += file.size;
    lightest.urls.push(file.url);
  }
  return shares[k - 1].urls.sort();
}

/** Imports the files of share `k`, registering their tests in this worker. */
export async function runE2eShare(k: number): Promise<void> {
  for (const url of await e2eShare(k)) await import(url);
}
