/**
 * Process groups of the children. Every child leads its own group (POSIX setsid), so a signal
 * to the negative group id reaches the grandchildren `npx`, `uvx` or a shell leave behind.
 * The proxy remembers each group it spawned until a SIGKILL has reached it, so a shutdown can
 * sweep the groups whose leader died on its own and whose members may still be running.
 */
import type { Logger } from "../log.ts";

/**
 * Deno.kill needs unrestricted --allow-run (checked on Deno 2.9.6), so process groups are
 * signalled with the system `kill` command instead; only that command is added.
 */
export const KILL_COMMAND = "kill";

export type GroupSignal = "SIGTERM" | "SIGKILL";

/** How long a group whose leader exited on its own gets between SIGTERM and SIGKILL. */
export const ORPHAN_GRACE_MS = 5000;

let runAll: boolean | undefined;

/**
 * Sends `signal` to every process in group `pgid` (POSIX kill(2) with a negative pid, or
 * kill(1) `-s SIG -- -PGID`). Resolves true when the group was reached or is already empty,
 * false when the signal could not be sent at all.
 */
export async function signalGroup(pgid: number, signal: GroupSignal): Promise<boolean> {
  runAll ??= Deno.permissions.querySync({ name: "run" }).state === "granted";
  if (runAll) {
    try {
      // Deno.kill on a negative pid needs unrestricted --allow-run.
      Deno.kill(-pgid, signal);
    } catch {
      // The group is already empty.
    }
    return true;
  }
  try {
    // Exit status 1 means "no such process": the group is already empty.
    await new Deno.Command(KILL_COMMAND, {
      args: ["-s", signal.slice(3), "--", `-${pgid}`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
      clearEnv: true,
      env: { PATH: safePath() },
    }).output();
    return true;
  } catch {
    return false;
  }
}

/**
 * The process groups this proxy started that may still have members. A group leaves the set
 * once a SIGKILL has been sent to it (nothing survives that), so a group id the kernel hands
 * out again later is never signalled by mistake.
 */
export class ProcessGroups {
  readonly #open = new Set<number>();
  readonly #timers = new Map<number, ReturnType<typeof setTimeout>>();

  constructor(private readonly log: Logger, readonly orphanGraceMs = ORPHAN_GRACE_MS) {}

  /** Records a freshly spawned group leader. */
  add(pgid: number): void {
    this.#open.add(pgid);
  }

  /** The groups that may still have members. */
  get open(): number[] {
    return [...this.#open];
  }

  /** Signals a group; after a SIGKILL it is forgotten. */
  async signal(pgid: number, signal: GroupSignal, label: string): Promise<boolean> {
    const sent = await signalGroup(pgid, signal);
    if (!sent) {
      this.log.warn("cannot signal the child's process group", { child: label, signal });
    } else if (signal === "SIGKILL") {
      this.#forget(pgid);
    }
    return sent;
  }

  /**
   * The leader exited on its own (a crash, kill -9): the rest of its group is orphaned.
   * SIGTERM now, SIGKILL after the grace period (or earlier, by the shutdown sweep).
   */
  async orphaned(pgid: number, label: string): Promise<void> {
    if (!this.#open.has(pgid)) return;
    await this.signal(pgid, "SIGTERM", label);
    if (!this.#open.has(pgid) || this.#timers.has(pgid)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(pgid);
      this.signal(pgid, "SIGKILL", label).catch(() => {});
    }, this.orphanGraceMs);
    // A pending sweep must not keep a stopping proxy alive: the shutdown sweep covers it.
    Deno.unrefTimer(timer);
    this.#timers.set(pgid, timer);
  }

  /** At shutdown: SIGKILL to every group that may still have members. */
  async sweep(): Promise<number> {
    const groups = this.open;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await Promise.all(groups.map((pgid) => this.signal(pgid, "SIGKILL", `group ${pgid}`)));
    if (groups.length > 0) {
      this.log.info("swept the process groups of exited children", { groups: groups.length });
    }
    return groups.length;
  }

  #forget(pgid: number): void {
    this.#open.delete(pgid);
    clearTimeout(this.#timers.get(pgid));
    this.#timers.delete(pgid);
  }
}

function safePath(): string {
  try {
    return Deno.env.get("PATH") ?? "/usr/bin:/bin";
  } catch {
    return "/usr/bin:/bin";
  }
}
