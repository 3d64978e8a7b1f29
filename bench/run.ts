/**
 * `deno task bench`: this proxy against supergateway, mcp-proxy and direct stdio, on loopback.
 *
 *   deno task bench [--quick] [--target LIST] [--workload LIST] [--soak SECONDS]
 *                   [--soak-rate N] [--rounds N] [--scale F] [--out FILE] [--strict]
 *
 * Prints a table (every figure followed by its ratio to the best peer / to direct stdio), writes
 * the same as JSON to bench/results/<timestamp>.json, prints PASS/FAIL per performance target
 * (docs/performance.md),
 * and proves every process it started is gone (killing stragglers by PID).
 */
import { parseArgs } from "node:util";
import { fakeGitHub } from "../tests/helpers/oauth.ts";
import { startPostgres, type TestPostgres } from "../tests/helpers/postgres.ts";
import type { FakeGitHub } from "../tests/fixtures/fake-github.ts";
import { ROOT } from "../tests/helpers/proxy.ts";
import { BENCH, ensureInstalled, versions } from "./install.ts";
import { ProcessTracker } from "./procs.ts";
import {
  addRatios,
  type Check,
  checks,
  percentile,
  type Row,
  type SoakResult,
  table,
} from "./report.ts";
import { soak } from "./soak.ts";
import {
  ALL_TARGETS,
  type Instance,
  isProxy,
  type Memory,
  type ServerId,
  SERVERS,
  startDirect,
  startFloor,
  startPeer,
  startProxyInstance,
  type TargetName,
  TARGETS,
} from "./targets.ts";
import { COLD_USER_BASE, sizes, type Workload, WORKLOADS, workloads } from "./workloads.ts";

const HELP = `deno task bench [options]

  --quick            fewer requests, 3 rounds, a 10 s soak (about 40 s in all)
  --target LIST      comma-separated: ${ALL_TARGETS.join(", ")}, or "all"
                     (default: ${TARGETS.join(", ")}; proxy-open = login without the IP
                     allow-list, proxy-noauth = --no-auth: diagnostics that split the edge's cost;
                     proxy-pg = proxy with its store in a throwaway PostgreSQL cluster)
  --workload LIST    comma-separated: ${WORKLOADS.join(", ")}, soak (default: all)
  --soak SECONDS     soak duration (default 60, --quick 10; 0 skips it)
  --soak-rate N      total calls per second during the soak (default 32: one a second per session)
  --rounds N         rounds per workload; targets alternate within each round (default 5, quick 3)
  --scale F          multiply the request counts (default 1)
  --out FILE         JSON path (default bench/results/<timestamp>.json)
  --strict           exit 1 when a target check fails
  --proxy-v8-flags F diagnostics: run the proxy variants with --v8-flags=F (e.g. to tell a
                     lazy garbage collector from a leak: --max-old-space-size=16)
`;

function list(value: string | undefined, all: readonly string[], what: string): string[] | null {
  if (!value) return null;
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (items.includes("all")) return [...all];
  for (const item of items) {
    if (!all.includes(item)) throw new Error(`unknown ${what} "${item}"; one of ${all.join(", ")}`);
  }
  return items;
}

function parse() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      target: { type: "string" },
      workload: { type: "string" },
      soak: { type: "string" },
      "soak-rate": { type: "string", default: "32" },
      rounds: { type: "string" },
      scale: { type: "string", default: "1" },
      out: { type: "string" },
      strict: { type: "boolean", default: false },
      "proxy-v8-flags": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  const targets = (list(values.target, ALL_TARGETS, "target") ?? [...TARGETS]) as TargetName[];
  const wl = list(values.workload, [...WORKLOADS, "soak"], "workload");
  const scale = Number(values.scale);
  if (!(scale > 0)) throw new Error("--scale: a number > 0");
  const z = sizes(values.quick, scale);
  if (values.rounds) {
    const rounds = Number(values.rounds);
    if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds: an integer ≥ 1");
    z.rounds = rounds;
  }
  const soakRate = Number(values["soak-rate"]);
  if (!(soakRate > 0)) throw new Error("--soak-rate: a number > 0");
  const soakSeconds = values.soak !== undefined ? Number(values.soak) : values.quick ? 10 : 60;
  if (!Number.isFinite(soakSeconds) || soakSeconds < 0) throw new Error("--soak: seconds ≥ 0");
  return {
    quick: values.quick,
    targets: ALL_TARGETS.filter((t) => targets.includes(t)),
    workloads: wl ? WORKLOADS.filter((w) => wl.includes(w)) : [...WORKLOADS],
    soak: (!wl || wl.includes("soak")) && soakSeconds > 0 ? soakSeconds : 0,
    soakRate,
    sizes: z,
    out: values.out,
    strict: values.strict,
    proxyV8Flags: values["proxy-v8-flags"],
  };
}

const log = (line: string) => console.error(line);
const MB = 1024 * 1024;
const mb = (bytes: number | null) => (bytes === null ? "-" : (bytes / MB).toFixed(1));

async function gitDescribe(): Promise<{ commit?: string; dirty?: string[] }> {
  try {
    const head = await new Deno.Command("git", { args: ["rev-parse", "HEAD"], cwd: ROOT }).output();
    const st = await new Deno.Command("git", {
      args: ["status", "--porcelain", "--", "lib", "main.ts"],
      cwd: ROOT,
    }).output();
    return {
      commit: new TextDecoder().decode(head.stdout).trim(),
      dirty: new TextDecoder().decode(st.stdout).split("\n").filter(Boolean),
    };
  } catch {
    return {};
  }
}

async function nodeVersion(): Promise<string> {
  const out = await new Deno.Command("node", { args: ["--version"] }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

function parseOrExit(): ReturnType<typeof parse> {
  try {
    return parse();
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : error} (see --help)`);
    Deno.exit(2);
  }
}

async function main(): Promise<number> {
  const opts = parseOrExit();
  const started = performance.now();
  const loadBefore = Deno.loadavg();
  if (loadBefore[0] > 0.5) {
    log(
      `note: load average ${
        loadBefore[0].toFixed(2)
      } before the run: other work on this machine skews absolute figures (the alternation keeps ratios fair)`,
    );
  }
  const tracker = new ProcessTracker();
  tracker.start(2000);
  const instances = new Map<string, Instance>();
  const key = (t: TargetName, s: ServerId) => `${t}/${s}`;
  let gh: FakeGitHub | undefined;
  let pg: TestPostgres | undefined;
  let databases = 0;
  const rows: Row[] = [];
  const soaks: SoakResult[] = [];
  const notes: string[] = [];
  const startup: Record<string, number> = {};
  const idle: Record<string, Memory> = {};
  let fatal: unknown;

  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    cleaning ??= (async () => {
      await Promise.all([...instances.values()].map((i) => i.stop().catch(() => {})));
      await gh?.close().catch(() => {});
      await pg?.stop().catch(() => {});
    })();
  const onSignal = () => {
    log("interrupted: stopping everything the harness started");
    cleanup().then(async () => {
      tracker.stop();
      const killed = await tracker.reap();
      if (killed.length) log(`killed ${killed.length} stragglers by PID`);
      Deno.exit(130);
    });
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const chosen = workloads(opts.sizes).filter((w) => opts.workloads.includes(w.name as never));
  try {
    const installed = await ensureInstalled(log);
    if (installed.length) notes.push(`installed ${installed.join(" ")}`);

    // ---- start every (target, stdio server) pair the chosen workloads need
    const servers = new Set<ServerId>(chosen.map((w) => w.server));
    if (opts.soak) servers.add("everything");
    if (opts.targets.some((t) => t === "proxy" || t === "proxy-open" || t === "proxy-pg")) {
      gh = await fakeGitHub();
    }
    if (opts.targets.includes("proxy-pg")) pg = await startPostgres();
    const users = COLD_USER_BASE + opts.sizes.rounds;
    log(
      `starting ${opts.targets.join(", ")} with ${[...servers].join(", ")} (${users} bench users)`,
    );
    const starts: Promise<void>[] = [];
    for (const t of opts.targets) {
      for (const s of servers) {
        const server = SERVERS[s];
        starts.push((async () => {
          const t0 = performance.now();
          const inst = t === "direct"
            ? startDirect(server)
            : t === "http-floor"
            ? await startFloor(server)
            : t === "supergateway" || t === "mcp-proxy"
            ? await startPeer(t, server)
            : await startProxyInstance(t, server, {
              gh: gh!,
              users: s === "everything" ? users : 1,
              v8Flags: opts.proxyV8Flags,
              database: () => pg!.database(`bench_${++databases}`),
            });
          instances.set(key(t, s), inst);
          startup[key(t, s)] = performance.now() - t0;
        })());
      }
    }
    const results = await Promise.allSettled(starts);
    const failed = results.filter((r) => r.status === "rejected");
    if (failed.length) throw (failed[0] as PromiseRejectedResult).reason;
    log(
      `started in ${((performance.now() - started) / 1000).toFixed(1)} s: ${
        Object.entries(startup).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(", ")
      }`,
    );
    tracker.sweep();
    // Memory at rest: started, signed in, no session yet.
    await new Promise((r) => setTimeout(r, 500));
    for (const [k, inst] of instances) idle[k] = inst.memory();

    // ---- workloads, round-robin across targets
    for (const w of chosen) {
      await runWorkload(
        w,
        opts.targets.filter((t) => !w.only || w.only(t)).map((t) =>
          instances.get(key(t, w.server))!
        ),
        rows,
        () => tracker.sweep(),
      );
    }

    // ---- soak (the proxy variants only)
    if (opts.soak) {
      for (const t of opts.targets.filter(isProxy)) {
        const inst = instances.get(key(t, "everything"))!;
        const warmupSeconds = opts.quick ? 2 : 5;
        log(
          `soak ${t}: 32 sessions, ${opts.soakRate} calls/s, ${warmupSeconds} s warm-up + ${opts.soak} s`,
        );
        const r = await soak(inst, {
          seconds: opts.soak,
          warmupSeconds,
          sessions: 32,
          rate: opts.soakRate,
          log,
        });
        soaks.push(r);
        tracker.sweep();
      }
    }
  } catch (error) {
    fatal = error;
    log(`error: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  }

  // ---- stop everything, then prove it is gone
  await cleanup();
  tracker.stop();
  const left = await tracker.reap();
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  const elapsed = (performance.now() - started) / 1000;

  addRatios(rows);
  const found: Check[] = checks(rows, soaks, left.map((p) => p.pid));
  found.push({
    target: "proxy",
    name: "cleanup: every process the harness started is gone",
    status: left.length ? "FAIL" : "PASS",
    detail: left.length
      ? `${left.length} stragglers killed by PID: ${
        left.map((p) => `${p.pid} ${p.command}`).join("; ").slice(0, 500)
      }`
      : `${tracker.count} processes started, none left`,
  });

  console.log("");
  console.log(
    "Each figure is followed by its ratio to the best peer / to direct stdio (lower is better for latency and RSS, higher for req/s); [n] = child processes.",
  );
  console.log(table(rows));
  for (const r of rows) {
    if (r.errorTexts.length) {
      console.log(`  ${r.workload} ${r.target} errors: ${r.errorTexts.join(" | ")}`);
    }
  }
  const byWorkload = (name: string, f: (r: Row) => string) =>
    rows.filter((r) => r.workload === name).map((r) => `${r.target} ${f(r)}`).join(", ");
  for (const w of ["sessions8", "sessions32", "users8"]) {
    if (rows.some((r) => r.workload === w)) {
      console.log(
        `untimed set-up of ${w} (open + 3 warm-up calls each): ${
          byWorkload(w, (r) => `${(r.setupMs / 1000).toFixed(2)} s`)
        }`,
      );
    }
  }
  if (rows.some((r) => r.workload === "progress")) {
    console.log(
      `progress notifications received per call (4 sent): ${
        byWorkload("progress", (r) => r.progressPerCall?.toFixed(2) ?? "-")
      }`,
    );
  }
  if (Object.keys(idle).length) {
    console.log(
      `idle RSS before any session, bridge (anonymous)/total MB: ${
        Object.entries(idle).filter(([k]) => !k.startsWith("direct/")).map(([k, m]) =>
          `${k} ${mb(m.proxy)} (${mb(m.proxyAnon)})/${mb(m.total)}`
        ).join(", ")
      }`,
    );
  }
  for (const s of soaks) {
    console.log(
      `\nsoak ${s.target}: ${s.calls} calls in ${s.seconds} s (${
        s.rps.toFixed(0)
      }/s), ${s.errors} errors, p50 ${s.p50Ms?.toFixed(2)} ms, p99 ${
        s.p99Ms?.toFixed(2)
      } ms; proxy RSS after warm-up ${(s.rssAfterWarmup / MB).toFixed(1)} MB, after the run ${
        (s.rssAfterRun / MB).toFixed(1)
      } MB, peak ${(s.rssPeak / MB).toFixed(1)} MB (anonymous ${mb(s.anonAfterWarmup)} → ${
        mb(s.anonAfterRun)
      } MB)`,
    );
    if (s.errorTexts.length) console.log(`  errors: ${s.errorTexts.join(" | ")}`);
  }
  console.log("");
  for (const c of found) console.log(`${c.status}  ${c.target}  ${c.name}: ${c.detail}`);
  console.log(`\nrun took ${elapsed.toFixed(1)} s`);

  const report = {
    date: new Date().toISOString(),
    args: Deno.args,
    elapsedSeconds: elapsed,
    machine: {
      cpus: navigator.hardwareConcurrency,
      loadavgBefore: loadBefore,
      loadavgAfter: Deno.loadavg(),
      memTotalBytes: Deno.systemMemoryInfo().total,
      os: Deno.build.os,
    },
    versions: { deno: Deno.version.deno, node: await nodeVersion(), ...versions() },
    git: await gitDescribe(),
    sizes: opts.sizes,
    soakSeconds: opts.soak,
    soakRate: opts.soakRate,
    startupMs: startup,
    idleRss: idle,
    results: rows,
    soak: soaks,
    checks: found,
    processes: {
      started: tracker.count,
      leftover: left.map((p) => ({ pid: p.pid, command: p.command })),
    },
    notes,
    error: fatal ? String(fatal) : undefined,
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const out = opts.out ?? `${BENCH}/results/${stamp}.json`;
  await Deno.mkdir(out.replace(/\/[^/]*$/, ""), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`results: ${out}`);

  if (fatal || left.length) return 1;
  if (opts.strict && found.some((c) => c.status === "FAIL")) return 1;
  return 0;
}

async function runWorkload(
  w: Workload<unknown>,
  insts: Instance[],
  rows: Row[],
  sweep: () => void,
) {
  const t0 = performance.now();
  const states = new Map<Instance, unknown>();
  const setupMs = new Map<Instance, number>();
  const failures = new Map<Instance, string>();
  for (const inst of insts) {
    const s0 = performance.now();
    try {
      states.set(inst, await w.setup(inst));
    } catch (error) {
      failures.set(inst, `setup failed: ${error instanceof Error ? error.message : error}`);
    }
    setupMs.set(inst, performance.now() - s0);
  }
  const acc = new Map<Instance, {
    latencies: number[];
    ok: number;
    errors: number;
    elapsed: number;
    progress: number;
    errorTexts: string[];
    proxyPeak: number | null;
    proxyAnon: number | null;
    totalPeak: number | null;
    children: number | null;
  }>();
  for (const inst of insts) {
    acc.set(inst, {
      latencies: [],
      ok: 0,
      errors: 0,
      elapsed: 0,
      progress: 0,
      errorTexts: [],
      proxyPeak: null,
      proxyAnon: null,
      totalPeak: null,
      children: null,
    });
  }
  for (let r = 0; r < w.rounds; r++) {
    // Each round starts with a different target, so no target always runs first or last.
    const order = insts.map((_, i) => insts[(i + r) % insts.length]);
    for (const inst of order) {
      if (!states.has(inst)) continue;
      const a = acc.get(inst)!;
      try {
        const s = await w.round(inst, states.get(inst), r);
        a.latencies.push(...s.latencies);
        a.ok += s.ok;
        a.errors += s.errors;
        a.elapsed += s.elapsedMs;
        a.progress += s.progress ?? 0;
        for (const e of s.errorTexts) if (a.errorTexts.length < 5) a.errorTexts.push(e);
      } catch (error) {
        a.errors++;
        if (a.errorTexts.length < 5) a.errorTexts.push(String(error));
      }
      // Memory with the workload's sessions open, after the round (untimed); peak over rounds.
      const m = inst.memory();
      if (m.proxy !== null && m.proxy > (a.proxyPeak ?? 0)) {
        a.proxyPeak = m.proxy;
        a.proxyAnon = m.proxyAnon;
      }
      if (m.total !== null && m.total > (a.totalPeak ?? 0)) {
        a.totalPeak = m.total;
        a.children = m.children;
      }
      sweep();
    }
  }
  for (const inst of insts) {
    if (states.has(inst)) await w.teardown(inst, states.get(inst)).catch(() => {});
  }
  const summary: string[] = [];
  for (const inst of insts) {
    const a = acc.get(inst)!;
    const failure = failures.get(inst);
    const row: Row = {
      workload: w.name,
      target: inst.target,
      server: inst.server.id,
      ok: a.ok,
      errors: a.errors + (failure ? 1 : 0),
      p50Ms: percentile(a.latencies, 0.5),
      p99Ms: percentile(a.latencies, 0.99),
      meanMs: a.latencies.length
        ? a.latencies.reduce((x, y) => x + y, 0) / a.latencies.length
        : null,
      rps: a.elapsed > 0 && a.ok > 0 ? a.ok / (a.elapsed / 1000) : null,
      proxyRss: a.proxyPeak,
      proxyAnon: a.proxyAnon,
      totalRss: a.totalPeak,
      children: a.children,
      setupMs: setupMs.get(inst) ?? 0,
      progressPerCall: w.name === "progress" && a.ok ? a.progress / a.ok : undefined,
      errorTexts: failure ? [failure, ...a.errorTexts] : a.errorTexts,
    };
    rows.push(row);
    summary.push(
      `${inst.target} ${row.p50Ms?.toFixed(2) ?? "-"} ms ${row.rps?.toFixed(0) ?? "-"}/s${
        row.errors ? ` ${row.errors} err` : ""
      }`,
    );
  }
  log(
    `${w.name} (${((performance.now() - t0) / 1000).toFixed(1)} s, ${w.what}): ${
      summary.join("; ")
    }`,
  );
}

Deno.exit(await main());
