/**
 * The soak: 32 sessions of one user calling echo at a paced total rate (so the run stays within a
 * few thousand requests) for a while; proxy RSS after warm-up against after the run, errors, and
 * the children left once the sessions are closed.
 */
import type { SoakResult } from "./report.ts";
import { percentile } from "./report.ts";
import { descendants } from "./procs.ts";
import type { Instance, Session } from "./targets.ts";
import { echo, Tally } from "./workloads.ts";

export interface SoakOptions {
  seconds: number;
  warmupSeconds: number;
  sessions: number;
  /** Total calls per second across all sessions. */
  rate: number;
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export async function soak(inst: Instance, o: SoakOptions): Promise<SoakResult> {
  const pid = inst.pid!;
  const sessions: Session[] = await inst.openMany(Array(o.sessions).fill(0));
  const interval = (o.sessions / o.rate) * 1000;
  const state = { phase: "warmup" as "warmup" | "run" | "stop" };
  const stopped = () => state.phase === "stop";
  const warm = new Tally();
  const tally = new Tally();
  const start = performance.now();
  const loops = sessions.map(async (s, i) => {
    let next = start + (i * interval) / o.sessions;
    while (!stopped()) {
      await sleep(next - performance.now());
      if (stopped()) break;
      await echo(s, inst, state.phase === "warmup" ? warm : tally);
      next += interval;
      // A slow call does not make the loop burst to catch up.
      if (next < performance.now()) next = performance.now();
    }
  });
  await sleep(o.warmupSeconds * 1000);
  const afterWarmup = inst.memory();
  const childrenAfterWarmup = descendants(pid).filter((p) => p.ppid === pid).length;
  state.phase = "run";
  const runStart = performance.now();
  const series: number[] = [];
  const end = runStart + o.seconds * 1000;
  let lastLog = runStart;
  while (performance.now() < end) {
    await sleep(Math.min(1000, end - performance.now()));
    series.push(inst.memory().proxy ?? 0);
    if (performance.now() - lastLog >= 15_000) {
      lastLog = performance.now();
      o.log(
        `  soak ${
          Math.round((lastLog - runStart) / 1000)
        } s: ${tally.ok} calls, ${tally.errors} errors, proxy RSS ${
          (series.at(-1)! / 1048576).toFixed(1)
        } MB`,
      );
    }
  }
  state.phase = "stop";
  await Promise.all(loops);
  const elapsed = performance.now() - runStart;
  const afterRun = inst.memory();
  await Promise.all(sessions.map((s) => s.close().catch(() => {})));
  await sleep(500);
  const children = descendants(pid).filter((p) => p.ppid === pid);
  return {
    target: inst.target,
    seconds: o.seconds,
    sessions: o.sessions,
    calls: tally.ok,
    errors: tally.errors + warm.errors,
    errorTexts: [...warm.errorTexts, ...tally.errorTexts].slice(0, 5),
    p50Ms: percentile(tally.latencies, 0.5),
    p99Ms: percentile(tally.latencies, 0.99),
    rps: tally.ok / (elapsed / 1000),
    rssAfterWarmup: afterWarmup.proxy ?? 0,
    rssAfterRun: afterRun.proxy ?? 0,
    anonAfterWarmup: afterWarmup.proxyAnon ?? 0,
    anonAfterRun: afterRun.proxyAnon ?? 0,
    rssPeak: Math.max(afterRun.proxy ?? 0, ...series),
    rssSeries: series,
    childrenAfterWarmup,
    childrenAfterClose: children.length,
    childPids: descendants(pid).map((p) => p.pid),
  };
}
