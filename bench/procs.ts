/**
 * The process table as /proc shows it (Linux): resident memory of a process tree, and a
 * tracker that remembers every process the harness caused to exist, so the end of the run can
 * prove they are all gone (and kill stragglers, one PID at a time).
 */

export interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  /** Start time in clock ticks since boot: with the PID, identifies a process across reuse. */
  start: number;
  command: string;
}

function parseStat(pid: number, stat: string): Proc {
  // The command sits in parentheses and may itself contain spaces or parentheses.
  const close = stat.lastIndexOf(")");
  const command = stat.slice(stat.indexOf("(") + 1, close);
  const f = stat.slice(close + 2).split(" ");
  return {
    pid,
    state: f[0],
    ppid: Number(f[1]),
    pgid: Number(f[2]),
    start: Number(f[19]),
    command,
  };
}

/** One process, or undefined when it is gone (zombies count as gone). */
export function proc(pid: number): Proc | undefined {
  try {
    const p = parseStat(pid, Deno.readTextFileSync(`/proc/${pid}/stat`));
    return p.state === "Z" || p.state === "X" ? undefined : p;
  } catch {
    return undefined;
  }
}

/** Every live process on the machine. */
export function processes(): Proc[] {
  const out: Proc[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const p = proc(Number(entry.name));
    if (p) out.push(p);
  }
  return out;
}

/** Live descendants of `pid` (not `pid` itself), from one snapshot of the table. */
export function descendants(pid: number, all: Proc[] = processes()): Proc[] {
  const byParent = new Map<number, Proc[]>();
  for (const p of all) {
    const list = byParent.get(p.ppid);
    if (list) list.push(p);
    else byParent.set(p.ppid, [p]);
  }
  const found: Proc[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

/** VmRSS of one process in bytes (0 when it is gone or a kernel thread). */
export function rss(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The full command line of a process ("" when gone). */
export function cmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/** VmRSS of one process split into anonymous memory (heaps) and file-backed pages (code). */
export function rssParts(pid: number): { rss: number; anon: number; file: number } {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") + kb("RssShmem") };
  } catch {
    return { rss: 0, anon: 0, file: 0 };
  }
}

export interface TreeRss {
  /** RSS of the roots themselves, bytes. */
  root: number;
  /** The anonymous part of `root` (heaps; the rest is mostly the runtime's mapped code). */
  rootAnon: number;
  /** RSS of the roots and all their descendants, bytes. */
  total: number;
  /** How many descendants were counted. */
  children: number;
}

/** RSS of some root processes and of their whole trees. */
export function treeRss(roots: number[]): TreeRss {
  const all = processes();
  let root = 0;
  let rootAnon = 0;
  let total = 0;
  let children = 0;
  const seen = new Set<number>();
  for (const pid of roots) {
    if (seen.has(pid)) continue;
    seen.add(pid);
    const r = rssParts(pid);
    root += r.rss;
    rootAnon += r.anon;
    total += r.rss;
    for (const d of descendants(pid, all)) {
      if (seen.has(d.pid)) continue;
      seen.add(d.pid);
      total += rss(d.pid);
      children++;
    }
  }
  return { root, rootAnon, total, children };
}

/**
 * Remembers every process the harness started or that descends from one: the harness's own
 * descendants are recorded at every `sweep()`, together with their process groups, so a child
 * that was re-parented to init (its parent died first) is still found at the end.
 */
export class ProcessTracker {
  /** key `pid:start` → the process as first seen. */
  readonly #seen = new Map<string, Proc>();
  readonly #groups = new Set<number>();
  readonly #self = Deno.pid;
  #timer?: ReturnType<typeof setInterval>;

  /** Records the harness's descendants now. */
  sweep(): void {
    const all = processes();
    for (const p of descendants(this.#self, all)) this.#remember(p);
    // Members of a known group that are no longer our descendants (re-parented).
    for (const p of all) if (this.#groups.has(p.pgid) && p.pid !== this.#self) this.#remember(p);
  }

  /** Sweeps every `ms` in the background until `stop()`. */
  start(ms = 500): void {
    this.#timer = setInterval(() => this.sweep(), ms);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #remember(p: Proc): void {
    const key = `${p.pid}:${p.start}`;
    if (!this.#seen.has(key)) this.#seen.set(key, { ...p, command: cmdline(p.pid) || p.command });
    // Only groups led by a process we started (never the harness's own group).
    if (p.pgid === p.pid) this.#groups.add(p.pgid);
  }

  /** How many distinct processes were seen. */
  get count(): number {
    return this.#seen.size;
  }

  /** Recorded processes that still exist (same PID and start time). */
  alive(): Proc[] {
    this.sweep();
    const out: Proc[] = [];
    for (const p of this.#seen.values()) {
      const now = proc(p.pid);
      if (now && now.start === p.start) out.push(p);
    }
    return out;
  }

  /** Waits until every recorded process is gone; SIGKILLs the rest by PID. Returns those killed. */
  async reap(graceMs = 3000): Promise<Proc[]> {
    const deadline = Date.now() + graceMs;
    let left = this.alive();
    while (left.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      left = this.alive();
    }
    for (const p of left) {
      try {
        Deno.kill(p.pid, "SIGKILL");
      } catch { /* gone meanwhile */ }
    }
    if (left.length) {
      const until = Date.now() + 2000;
      while (this.alive().length && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return left;
  }
}
