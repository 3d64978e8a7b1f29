/**
 * Every test file (`tests/**\/*.test.ts`) in as many test workers as `deno task test` runs at
 * once: the task runs `tests/groups/lane-1.ts` … `lane-<LANES>.ts` with `DENO_JOBS=<LANES>`, and
 * each imports its lane's files, one after another. A worker costs about 0.3 s of CPU before its
 * first test (Deno 2.9's test runtime allocates a 10-million-element array for `Deno.bench`
 * results in every worker, ext:cli/40_bench.js), and one lane per worker means all of them start
 * at once: none waits for a free worker and ends alone at the end.
 *
 * The files are dealt so that the lanes end together on this machine. Each file is known by its
 * wall and CPU seconds alone (tests/groups/weights.json, written by tests/groups/weigh.ts); a
 * file not in there yet is weighed by its size. Most CPU first, each file is inserted where (which
 * lane, and where in it) the run then ends soonest, as `simulate` predicts: the lanes share the
 * cores, and while the running files ask for more CPU than there are cores, all of them slow down
 * alike. A file that mostly waits (for timers, restarts, processes) thus runs while the other
 * lanes need the cores, instead of all lanes waiting at once while the cores idle (which is what
 * dealing the longest files first did: they are the ones that wait). Dealing tries every place
 * for every file, about 0.1 s of CPU in each worker.
 *
 * One file alone still runs with
 * `deno test -A --unstable-kv --unstable-no-legacy-abort tests/<path>.test.ts`.
 */
import { testFiles } from "./files.ts";

/** How many lanes (test workers at once) `deno task test` runs. */
export const LANES = 4;

/** Where tests/groups/weigh.ts writes the weights, relative to the repository root. */
export const WEIGHTS_PATH = "tests/groups/weights.json";

/** One test file alone: wall seconds and the machine's CPU seconds meanwhile. */
export interface Weight {
  seconds: number;
  cpu: number;
}

/** A file to deal: its URL and its weight. */
export interface Job extends Weight {
  url: string;
}

const ROOT = new URL("../../", import.meta.url);

/**
 * When each lane ends if the lanes run side by side on `cores` cores: each running file asks for
 * `cpu / seconds` cores; while the asks add up to more than `cores`, every running file advances
 * at `cores / asked` of its speed alone (processor sharing).
 */
export function simulate(lanes: Job[][], cores: number): number[] {
  const at = lanes.map(() => 0); // index of each lane's running file
  const left = lanes.map((lane) => lane[0]?.seconds ?? 0); // its seconds-alone still to go
  const ends = lanes.map(() => 0);
  let now = 0;
  for (;;) {
    let asked = 0;
    let soonest = Infinity;
    for (let i = 0; i < lanes.length; i++) {
      if (at[i] === lanes[i].length) continue;
      asked += demand(lanes[i][at[i]]);
      soonest = Math.min(soonest, left[i]);
    }
    if (soonest === Infinity) return ends;
    const speed = asked > cores ? cores / asked : 1;
    now += soonest / speed;
    for (let i = 0; i < lanes.length; i++) {
      if (at[i] === lanes[i].length) continue;
      left[i] -= soonest;
      while (at[i] < lanes[i].length && left[i] <= 1e-9) {
        at[i]++;
        ends[i] = now;
        left[i] += lanes[i][at[i]]?.seconds ?? 0;
      }
    }
  }
}

function demand(job: Job): number {
  return job.seconds > 0 ? job.cpu / job.seconds : 0;
}

/**
 * The files dealt into `count` lanes: by CPU seconds, most first, each inserted where (lane and
 * place in it) the simulated run then ends soonest (then where the lanes' ends add up to least,
 * then the lowest lane and place).
 */
export function deal(jobs: Job[], count: number, cores: number): Job[][] {
  const sorted = [...jobs].sort((a, b) => b.cpu - a.cpu || (a.url < b.url ? -1 : 1));
  const lanes: Job[][] = Array.from({ length: count }, () => []);
  for (const job of sorted) {
    let best = { lane: 0, at: 0, end: Infinity, total: Infinity };
    for (let i = 0; i < count; i++) {
      for (let at = 0; at <= lanes[i].length; at++) {
        const trial = lanes.map((lane, j) => j === i ? lane.toSpliced(at, 0, job) : lane);
        const ends = simulate(trial, cores);
        const end = Math.max(...ends);
        const total = ends.reduce((sum, t) => sum + t, 0);
        if (end < best.end - 1e-9 || (end <= best.end + 1e-9 && total < best.total - 1e-9)) {
          best = { lane: i, at, end, total };
        }
      }
    }
    lanes[best.lane].splice(best.at, 0, job);
  }
  return lanes;
}

/** Every test file with its weight (measured, else estimated from its size), and the cores. */
export async function weighedFiles(): Promise<{ jobs: Job[]; cores: number }> {
  const table: { cores: number; files: Record<string, Weight> } = JSON.parse(
    await Deno.readTextFile(new URL(WEIGHTS_PATH, ROOT)),
  );
  const files = await Promise.all(
    (await testFiles(new URL("tests/", ROOT))).map(async (url) => ({
      url,
      measured: table.files[url.slice(ROOT.href.length)],
      size: (await Deno.stat(new URL(url))).size,
    })),
  );
  // Seconds and CPU per byte over the files the table knows, for those it does not.
  const known = files.filter((f) => f.measured !== undefined);
  const bytes = Math.max(1, known.reduce((sum, f) => sum + f.size, 0));
  const perByte = (key: keyof Weight) => known.reduce((sum, f) => sum + f.measured[key], 0) / bytes;
  const jobs = files.map((f) => ({
    url: f.url,
    seconds: f.measured?.seconds ?? f.size * perByte("seconds"),
    cpu: f.measured?.cpu ?? f.size * perByte("cpu"),
  }));
  return { jobs, cores: table.cores };
}

let dealt: Promise<string[][]> | undefined;

/** The files of lane `k` (1 … LANES), as file URLs in the order they run. */
export async function lane(k: number): Promise<string[]> {
  dealt ??= weighedFiles().then(({ jobs, cores }) =>
    deal(jobs, LANES, cores).map((files) => files.map((job) => job.url))
  );
  return (await dealt)[k - 1];
}

/** Imports the files of lane `k`, registering their tests in this worker. */
export async function runLane(k: number): Promise<void> {
  for (const url of await lane(k)) await import(url);
}
