/** Process-table helpers for tests, read from /proc (Linux). */

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  command: string;
}

/** Every process on the machine, as /proc shows it now. */
export function processes(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // The command sits in parentheses and may itself contain spaces or parentheses.
      const close = stat.lastIndexOf(")");
      const command = stat.slice(stat.indexOf("(") + 1, close);
      const fields = stat.slice(close + 2).split(" ");
      out.push({
        pid: Number(entry.name),
        state: fields[0],
        ppid: Number(fields[1]),
        pgid: Number(fields[2]),
        command,
      });
    } catch {
      // It exited while we looked.
    }
  }
  return out;
}

/** Live (not zombie) processes in any of the given process groups. */
export function liveInGroups(groups: Iterable<number>): ProcInfo[] {
  const set = new Set(groups);
  return processes().filter((p) => set.has(p.pgid) && p.state !== "Z" && p.state !== "X");
}

/** Direct and indirect children of `pid` that are alive now. */
export function descendants(pid: number): ProcInfo[] {
  const all = processes();
  const found: ProcInfo[] = [];
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift()!;
    for (const p of all) {
      if (p.ppid === parent && p.state !== "Z") {
        found.push(p);
        queue.push(p.pid);
      }
    }
  }
  return found;
}

/** Polls until `check` is true, or throws after `timeoutMs`. */
export async function eventually(check: () => boolean, timeoutMs = 10_000, what = "condition") {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True while `pid` exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}
