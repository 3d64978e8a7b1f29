/**
 * The workloads. Each one prepares sessions on a target (not timed), then runs in rounds; the
 * runner interleaves the targets round by round so machine drift hits all of them alike.
 */
import type { Instance, ModernSession, ServerId, Session } from "./targets.ts";

export interface Sample {
  /** Latency of each successful operation, ms. */
  latencies: number[];
  /** Successful operations. */
  ok: number;
  errors: number;
  /** Wall time of the round, ms. */
  elapsedMs: number;
  /** Progress notifications received (progress workload). */
  progress?: number;
  errorTexts: string[];
}

export interface Sizes {
  rounds: number;
  seq: number;
  seqFixture: number;
  perSession8: number;
  perSession32: number;
  newPerRound: number;
  bigPerRound: number;
  progressPerRound: number;
}

export function sizes(quick: boolean, scale: number): Sizes {
  const s = (n: number) => Math.max(1, Math.round(n * scale));
  return quick
    ? {
      rounds: 3,
      seq: s(240),
      seqFixture: s(120),
      perSession8: s(30),
      perSession32: s(9),
      newPerRound: 1,
      bigPerRound: 2,
      progressPerRound: 2,
    }
    : {
      rounds: 5,
      seq: s(800),
      seqFixture: s(300),
      perSession8: s(100),
      perSession32: s(30),
      newPerRound: 2,
      bigPerRound: 3,
      progressPerRound: 3,
    };
}

export interface Workload<S = unknown> {
  name: string;
  server: ServerId;
  /** The targets it runs on (default: all). */
  only?: (target: string) => boolean;
  what: string;
  rounds: number;
  setup(inst: Instance): Promise<S>;
  round(inst: Instance, state: S, round: number): Promise<Sample>;
  teardown(inst: Instance, state: S): Promise<void>;
}

/** Users 0..7 are the "eight users"; cold new-session rounds use users from COLD_USER_BASE on. */
export const COLD_USER_BASE = 8;

const TIMEOUT = { timeout: 15_000 };

function firstText(result: unknown): string | undefined {
  const content = (result as { content?: { type?: string; text?: string }[] }).content;
  const first = Array.isArray(content) ? content[0] : undefined;
  return first?.type === "text" ? first.text : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export class Tally {
  latencies: number[] = [];
  ok = 0;
  errors = 0;
  progress = 0;
  errorTexts: string[] = [];

  fail(text: string) {
    this.errors++;
    if (this.errorTexts.length < 5) this.errorTexts.push(text.slice(0, 300));
  }

  sample(elapsedMs: number, withProgress = false): Sample {
    return {
      latencies: this.latencies,
      ok: this.ok,
      errors: this.errors,
      elapsedMs,
      progress: withProgress ? this.progress : undefined,
      errorTexts: this.errorTexts,
    };
  }
}

let seqNo = 0;

/** One `tools/call echo` through `call`, checked, timed into `tally`. */
async function timedEcho(
  inst: Instance,
  tally: Tally,
  call: (args: Record<string, unknown>) => Promise<Record<string, unknown>>,
): Promise<void> {
  const text = `bench ${++seqNo}`;
  const t0 = performance.now();
  try {
    const res = await call(inst.server.echo(text));
    const ms = performance.now() - t0;
    if (res.isError || firstText(res) !== inst.server.echoed(text)) {
      tally.fail(`echo answered ${JSON.stringify(res).slice(0, 200)}`);
      return;
    }
    tally.latencies.push(ms);
    tally.ok++;
  } catch (error) {
    tally.fail(describe(error));
  }
}

/** One `tools/call echo` on a 2025-era session. */
export function echo(session: Session, inst: Instance, tally: Tally): Promise<void> {
  return timedEcho(
    inst,
    tally,
    (args) => session.client.callTool({ name: "echo", arguments: args }, undefined, TIMEOUT),
  );
}

/** One `tools/call echo` over MCP 2026-07-28 (no session). */
function modernEcho(s: ModernSession, inst: Instance, tally: Tally): Promise<void> {
  return timedEcho(
    inst,
    tally,
    (args) => s.client.callTool({ name: "echo", arguments: args }, TIMEOUT),
  );
}

/**
 * `callers` sessionless (MCP 2026-07-28) clients of one user calling echo at once: the 2026 lane
 * of this proxy, to compare with `seq` and `sessions8` (the 2025 lane) on the same child.
 */
function sessionless(name: string, callers: number, total: number, z: Sizes) {
  const perRound = Math.max(1, Math.round(total / z.rounds));
  const workload: Workload<ModernSession[]> = {
    name,
    server: "everything",
    only: (target) => target.startsWith("proxy"),
    what: `${callers}×${perRound * z.rounds} tools/call echo, MCP 2026-07-28 (no session)`,
    rounds: z.rounds,
    setup: async (inst) => {
      const clients = await Promise.all(Array.from({ length: callers }, () => inst.openModern!(0)));
      const warm = new Tally();
      for (const c of clients) for (let i = 0; i < 3; i++) await modernEcho(c, inst, warm);
      if (warm.errors) throw new Error(`warm-up failed: ${warm.errorTexts.join("; ")}`);
      return clients;
    },
    round: async (inst, clients) => {
      const tally = new Tally();
      const t0 = performance.now();
      await Promise.all(clients.map(async (c) => {
        for (let i = 0; i < perRound; i++) await modernEcho(c, inst, tally);
      }));
      return tally.sample(performance.now() - t0);
    },
    teardown: async (_inst, clients) => {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
    },
  };
  return workload;
}

async function closeAll(sessions: Session[]) {
  await Promise.all(sessions.map((s) => s.close().catch(() => {})));
}

/** `count` sequential echo calls on one session, per round. */
function sequential(name: string, server: ServerId, total: number, z: Sizes): Workload<Session> {
  const perRound = Math.max(1, Math.round(total / z.rounds));
  return {
    name,
    server,
    what: `${perRound * z.rounds} sequential tools/call echo on one session`,
    rounds: z.rounds,
    setup: async (inst) => {
      const s = await inst.open(0);
      const warm = new Tally();
      for (let i = 0; i < 20; i++) await echo(s, inst, warm);
      return s;
    },
    round: async (inst, s) => {
      const tally = new Tally();
      const t0 = performance.now();
      for (let i = 0; i < perRound; i++) await echo(s, inst, tally);
      return tally.sample(performance.now() - t0);
    },
    teardown: (_inst, s) => s.close(),
  };
}

/** `users.length` sessions, each calling echo sequentially, all at once. */
function concurrent(
  name: string,
  what: string,
  users: number[],
  perSessionTotal: number,
  z: Sizes,
): Workload<Session[]> {
  const perRound = Math.max(1, Math.round(perSessionTotal / z.rounds));
  return {
    name,
    server: "everything",
    what: `${what}: ${users.length}×${perRound * z.rounds} tools/call echo`,
    rounds: z.rounds,
    setup: async (inst) => {
      const sessions = await inst.openMany(users);
      const warm = new Tally();
      await Promise.all(sessions.map(async (s) => {
        for (let i = 0; i < 3; i++) await echo(s, inst, warm);
      }));
      if (warm.errors) throw new Error(`warm-up failed: ${warm.errorTexts.join("; ")}`);
      return sessions;
    },
    round: async (inst, sessions) => {
      const tally = new Tally();
      const t0 = performance.now();
      await Promise.all(sessions.map(async (s) => {
        for (let i = 0; i < perRound; i++) await echo(s, inst, tally);
      }));
      return tally.sample(performance.now() - t0);
    },
    teardown: (_inst, sessions) => closeAll(sessions),
  };
}

/** Initialize + first tool result on a new session; closed (DELETE) afterwards. */
function newSession(kind: "cold" | "warm", z: Sizes): Workload<Session | undefined> {
  const perRound = kind === "cold" ? 1 : z.newPerRound;
  return {
    name: `new-${kind}`,
    server: "everything",
    what: kind === "cold"
      ? "new session for an identity with no running child: initialize + first echo result"
      : "new session of a user whose child is running: initialize + first echo result",
    rounds: z.rounds,
    // warm: one session of user 0 stays open, so the server behind is up and has answered.
    setup: async (inst) => {
      if (kind === "cold") return undefined;
      const s = await inst.open(0);
      const warm = new Tally();
      await echo(s, inst, warm);
      return s;
    },
    round: async (inst, _s, round) => {
      const tally = new Tally();
      const t0 = performance.now();
      for (let i = 0; i < perRound; i++) {
        const user = kind === "cold" ? COLD_USER_BASE + round : 0;
        const start = performance.now();
        let session: Session | undefined;
        try {
          session = await inst.open(user);
          const text = `first ${++seqNo}`;
          const res = await session.client.callTool(
            { name: "echo", arguments: inst.server.echo(text) },
            undefined,
            TIMEOUT,
          );
          const ms = performance.now() - start;
          if (res.isError || firstText(res) !== inst.server.echoed(text)) {
            tally.fail(`echo answered ${JSON.stringify(res).slice(0, 200)}`);
          } else {
            tally.latencies.push(ms);
            tally.ok++;
          }
        } catch (error) {
          tally.fail(describe(error));
        } finally {
          await session?.close().catch(() => {});
        }
      }
      return tally.sample(performance.now() - t0);
    },
    teardown: async (_inst, s) => {
      await s?.close();
    },
  };
}

const MIB = 1024 * 1024;

function big(z: Sizes): Workload<Session> {
  return {
    name: "big-1mib",
    server: "fixture",
    what: `${z.bigPerRound * z.rounds} tools/call big {bytes: 1 MiB} on one session (fixture)`,
    rounds: z.rounds,
    setup: async (inst) => {
      const s = await inst.open(0);
      await s.client.callTool({ name: "big", arguments: { bytes: MIB } }, undefined, TIMEOUT);
      return s;
    },
    round: async (_inst, s) => {
      const tally = new Tally();
      const t0 = performance.now();
      for (let i = 0; i < z.bigPerRound; i++) {
        const start = performance.now();
        try {
          const res = await s.client.callTool(
            { name: "big", arguments: { bytes: MIB } },
            undefined,
            TIMEOUT,
          );
          const ms = performance.now() - start;
          if (firstText(res)?.length !== MIB) tally.fail("big: wrong length");
          else {
            tally.latencies.push(ms);
            tally.ok++;
          }
        } catch (error) {
          tally.fail(describe(error));
        }
      }
      return tally.sample(performance.now() - t0);
    },
    teardown: (_inst, s) => s.close(),
  };
}

/** server-everything's trigger-long-running-operation: 4 progress notifications over ~20 ms. */
export const PROGRESS_ARGS = { duration: 0.02, steps: 4 };

function progress(z: Sizes): Workload<Session> {
  return {
    name: "progress",
    server: "everything",
    what: `${
      z.progressPerRound * z.rounds
    } trigger-long-running-operation {duration: 0.02 s, steps: 4} with a progressToken (streamed)`,
    rounds: z.rounds,
    setup: async (inst) => {
      const s = await inst.open(0);
      await echo(s, inst, new Tally());
      return s;
    },
    round: async (_inst, s) => {
      const tally = new Tally();
      const t0 = performance.now();
      for (let i = 0; i < z.progressPerRound; i++) {
        const start = performance.now();
        let events = 0;
        try {
          const res = await s.client.callTool(
            { name: "trigger-long-running-operation", arguments: PROGRESS_ARGS },
            undefined,
            { ...TIMEOUT, onprogress: () => events++ },
          );
          const ms = performance.now() - start;
          if (res.isError || !/completed/.test(firstText(res) ?? "")) {
            tally.fail(`progress answered ${JSON.stringify(res).slice(0, 200)}`);
          } else if (events === 0) {
            tally.fail("no progress notification arrived");
          } else {
            tally.latencies.push(ms);
            tally.ok++;
            tally.progress += events;
          }
        } catch (error) {
          tally.fail(describe(error));
        }
      }
      return tally.sample(performance.now() - t0, true);
    },
    teardown: (_inst, s) => s.close(),
  };
}

export const WORKLOADS = [
  "seq",
  "sessions8",
  "sessions32",
  "users8",
  "new-warm",
  "new-cold",
  "progress",
  "seq-fixture",
  "big-1mib",
  "stateless",
  "stateless8",
] as const;
export type WorkloadName = typeof WORKLOADS[number];

/** A workload with its state type hidden, so different ones fit in one list. */
function erase<S>(w: Workload<S>): Workload<unknown> {
  return w as unknown as Workload<unknown>;
}

/** The workloads in run order (memory-sensitive ones first: later ones leave children behind). */
export function workloads(z: Sizes): Workload<unknown>[] {
  return [
    erase(sequential("seq", "everything", z.seq, z)),
    erase(concurrent("sessions8", "8 sessions of one user", Array(8).fill(0), z.perSession8, z)),
    erase(
      concurrent("sessions32", "32 sessions of one user", Array(32).fill(0), z.perSession32, z),
    ),
    erase(concurrent(
      "users8",
      "8 sessions of 8 users",
      Array.from({ length: 8 }, (_, i) => i),
      z.perSession8,
      z,
    )),
    erase(newSession("warm", z)),
    erase(newSession("cold", z)),
    erase(progress(z)),
    erase(sequential("seq-fixture", "fixture", z.seqFixture, z)),
    erase(big(z)),
    erase(sessionless("stateless", 1, z.seq, z)),
    erase(sessionless("stateless8", 8, z.perSession8, z)),
  ];
}
