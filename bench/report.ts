/** Figures, ratios to the best peer and to direct stdio, the printed table and the target checks. */
import { isPeer, isProxy, type TargetName } from "./targets.ts";

export interface Row {
  workload: string;
  target: TargetName;
  server: string;
  /** Successful operations (calls, or new sessions). */
  ok: number;
  errors: number;
  p50Ms: number | null;
  p99Ms: number | null;
  meanMs: number | null;
  rps: number | null;
  /** The bridge process alone (null for direct stdio), bytes, peak over the rounds. */
  proxyRss: number | null;
  /** The anonymous part of `proxyRss` at its peak (heaps; the rest is mapped runtime code). */
  proxyAnon: number | null;
  /** Bridge and children (direct: the stdio servers), bytes, peak over the rounds. */
  totalRss: number | null;
  /** Child processes at the peak. */
  children: number | null;
  /** Untimed preparation: opening the workload's sessions and warming them up. */
  setupMs: number;
  progressPerCall?: number;
  errorTexts: string[];
  vsBestPeer?: Ratios;
  vsDirect?: Ratios;
}

export const METRICS = ["p50Ms", "p99Ms", "rps", "proxyRss", "totalRss"] as const;
export type Metric = typeof METRICS[number];
export type Ratios = Record<Metric, number | null>;

const LOWER_IS_BETTER: Record<Metric, boolean> = {
  p50Ms: true,
  p99Ms: true,
  rps: false,
  proxyRss: true,
  totalRss: true,
};

/** Nearest-rank percentile of unsorted values. */
export function percentile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** The best peer's value of `metric` in `workload` (lowest, or highest for rps). */
export function bestPeer(rows: Row[], workload: string, metric: Metric): number | null {
  const values = rows.filter((r) => r.workload === workload && isPeer(r.target))
    .map((r) => r[metric]).filter((v): v is number => typeof v === "number" && v > 0);
  if (values.length === 0) return null;
  return LOWER_IS_BETTER[metric] ? Math.min(...values) : Math.max(...values);
}

function ratio(value: number | null, base: number | null): number | null {
  if (value === null || base === null || base === 0) return null;
  return value / base;
}

/** Fills `vsBestPeer` and `vsDirect` of every row. */
export function addRatios(rows: Row[]): void {
  for (const row of rows) {
    const direct = rows.find((r) => r.workload === row.workload && r.target === "direct");
    const peer = {} as Ratios;
    const dir = {} as Ratios;
    for (const m of METRICS) {
      peer[m] = ratio(row[m], bestPeer(rows, row.workload, m));
      dir[m] = ratio(row[m], direct?.[m] ?? null);
    }
    row.vsBestPeer = peer;
    row.vsDirect = dir;
  }
}

const MB = 1024 * 1024;

function num(v: number | null, digits: number): string {
  return v === null ? "-" : v.toFixed(digits);
}

function x(v: number | null | undefined): string {
  return v === null || v === undefined ? "-" : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function cell(row: Row, metric: Metric, value: string): string {
  return `${value} ${x(row.vsBestPeer?.[metric])}/${x(row.vsDirect?.[metric])}`;
}

/** The table: every figure followed by its ratio to the best peer / to direct stdio. */
export function table(rows: Row[]): string {
  const header = [
    "workload",
    "target",
    "ok",
    "err",
    "p50 ms",
    "p99 ms",
    "req/s",
    "proxy MB",
    "total MB",
  ];
  const body = rows.map((r) => [
    r.workload,
    r.target,
    String(r.ok),
    String(r.errors),
    cell(r, "p50Ms", num(r.p50Ms, 2)),
    cell(r, "p99Ms", num(r.p99Ms, 2)),
    cell(r, "rps", num(r.rps, 0)),
    cell(r, "proxyRss", r.proxyRss === null ? "-" : num(r.proxyRss / MB, 1)),
    cell(
      r,
      "totalRss",
      r.totalRss === null
        ? "-"
        : `${num(r.totalRss / MB, 1)}${r.children ? `[${r.children}]` : ""}`,
    ),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  const out = [line(header), widths.map((w) => "-".repeat(w)).join("  ")];
  let last = "";
  for (let i = 0; i < body.length; i++) {
    if (last && rows[i].workload !== last) out.push("");
    last = rows[i].workload;
    out.push(line(body[i]));
  }
  return out.join("\n");
}

export interface SoakResult {
  target: TargetName;
  seconds: number;
  sessions: number;
  calls: number;
  errors: number;
  errorTexts: string[];
  p50Ms: number | null;
  p99Ms: number | null;
  rps: number;
  rssAfterWarmup: number;
  rssAfterRun: number;
  /** Anonymous parts (heaps) of the two figures above. */
  anonAfterWarmup: number;
  anonAfterRun: number;
  rssPeak: number;
  rssSeries: number[];
  childrenAfterWarmup: number;
  childrenAfterClose: number;
  /** PIDs of the proxy's children after the soak; checked gone at the end of the run. */
  childPids: number[];
}

export interface Check {
  target: TargetName;
  name: string;
  status: "PASS" | "FAIL" | "SKIP";
  detail: string;
}

function row(rows: Row[], workload: string, target: string): Row | undefined {
  return rows.find((r) => r.workload === workload && r.target === target);
}

/** The issue's targets, for every proxy variant in the run. */
export function checks(rows: Row[], soaks: SoakResult[], leftovers: number[]): Check[] {
  const out: Check[] = [];
  const targets = [...new Set(rows.map((r) => r.target))].filter(isProxy);
  for (const soak of soaks) if (!targets.includes(soak.target)) targets.push(soak.target);
  for (const t of targets) {
    const add = (name: string, pass: boolean | null, detail: string) =>
      out.push({
        target: t,
        name,
        status: pass === null ? "SKIP" : pass ? "PASS" : "FAIL",
        detail,
      });
    const vsPeer = (
      name: string,
      workload: string,
      metric: Metric,
      factor: number,
      unit: string,
    ) => {
      const r = row(rows, workload, t);
      const best = bestPeer(rows, workload, metric);
      const v = r?.[metric] ?? null;
      if (v === null || best === null || !r || r.ok === 0) {
        return add(name, null, `no ${workload} figures for ${t} and the peers`);
      }
      const pass = LOWER_IS_BETTER[metric] ? v <= factor * best : v >= factor * best;
      add(
        name,
        pass,
        `${v.toFixed(2)} ${unit} vs best peer ${best.toFixed(2)} ${unit} (${
          (v / best).toFixed(2)
        }×, needs ${LOWER_IS_BETTER[metric] ? "≤" : "≥"} ${factor}×)`,
      );
    };
    vsPeer("one session: p50 ≤ 0.7× best peer", "seq", "p50Ms", 0.7, "ms");
    vsPeer("one session: req/s ≥ 1.3× best peer", "seq", "rps", 1.3, "req/s");
    vsPeer("8 sessions: req/s ≥ 1.5× best peer", "sessions8", "rps", 1.5, "req/s");

    const mine = row(rows, "new-warm", t);
    const sg = row(rows, "new-warm", "supergateway");
    if (mine?.p50Ms != null && sg?.p50Ms != null) {
      add(
        "new session: first result ≤ 1/20 of supergateway's",
        mine.p50Ms <= sg.p50Ms / 20,
        `${mine.p50Ms.toFixed(1)} ms vs supergateway ${sg.p50Ms.toFixed(1)} ms (1/${
          (sg.p50Ms / mine.p50Ms).toFixed(1)
        }, needs ≤ 1/20 = ${(sg.p50Ms / 20).toFixed(1)} ms)`,
      );
    } else add("new session: first result ≤ 1/20 of supergateway's", null, "no new-warm figures");

    const s32 = row(rows, "sessions32", t);
    if (s32?.proxyRss != null) {
      add(
        "32 sessions: proxy RSS < 80 MB",
        s32.proxyRss < 80 * MB,
        `${(s32.proxyRss / MB).toFixed(1)} MB (anonymous ${
          ((s32.proxyAnon ?? 0) / MB).toFixed(1)
        } MB, file-backed ${((s32.proxyRss - (s32.proxyAnon ?? 0)) / MB).toFixed(1)} MB)`,
      );
    } else add("32 sessions: proxy RSS < 80 MB", null, "no sessions32 figures");

    const s8 = row(rows, "sessions8", t);
    const sg8 = row(rows, "sessions8", "supergateway");
    if (s8?.totalRss != null && sg8?.totalRss != null) {
      add(
        "8 sessions of one user: total RSS ≤ 1/4 of supergateway's",
        s8.totalRss <= sg8.totalRss / 4,
        `${(s8.totalRss / MB).toFixed(1)} MB vs supergateway ${
          (sg8.totalRss / MB).toFixed(1)
        } MB (${(s8.totalRss / sg8.totalRss).toFixed(2)}×, needs ≤ 0.25×)`,
      );
    } else add("8 sessions of one user: total RSS ≤ 1/4 of supergateway's", null, "no figures");

    const soak = soaks.find((s) => s.target === t);
    if (soak) {
      const drift = (soak.rssAfterRun - soak.rssAfterWarmup) / soak.rssAfterWarmup;
      const left = soak.childPids.filter((p) => leftovers.includes(p));
      const pass = soak.errors === 0 && Math.abs(drift) <= 0.1 &&
        soak.childrenAfterClose <= soak.childrenAfterWarmup && left.length === 0;
      add(
        `soak: ${soak.sessions} sessions for ${soak.seconds} s`,
        pass,
        `${soak.calls} calls, ${soak.errors} errors; proxy RSS ${
          (soak.rssAfterWarmup / MB).toFixed(1)
        } MB after warm-up → ${(soak.rssAfterRun / MB).toFixed(1)} MB after the run (${
          drift >= 0 ? "+" : ""
        }${
          (drift * 100).toFixed(1)
        }%, needs within ±10%); children ${soak.childrenAfterWarmup} → ${soak.childrenAfterClose}; ${left.length} left after stop`,
      );
    } else add("soak", null, "not run (--soak 0, or filtered out)");
  }
  return out;
}
