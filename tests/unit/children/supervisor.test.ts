/** The supervisor and process groups with real child processes. */
import assert from "node:assert/strict";
import { Child } from "../../../lib/children/child.ts";
import { ProcessGroups } from "../../../lib/children/group.ts";
import { Supervisor, type SupervisorOptions } from "../../../lib/children/supervisor.ts";
import { slowStartHint, UnavailableError } from "../../../lib/children/lifecycle.ts";
import { createLogger } from "../../../lib/log.ts";
import { FIXTURE } from "../../helpers/proxy.ts";
import { eventually, liveInGroups } from "../../helpers/procs.ts";

function capture() {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: "debug", write: (line) => lines.push(line) }) };
}

function options(
  log: SupervisorOptions["log"],
  command: string,
  args: string[],
  extra: Partial<SupervisorOptions> = {},
): SupervisorOptions {
  return {
    spec: { server: "t", command, args, env: {}, maxLineBytes: 1 << 20 },
    protocolVersion: "2025-06-18",
    clientInfo: { name: "test", version: "1" },
    initTimeoutMs: 30_000,
    restartDelayMs: 20,
    log,
    ...extra,
  };
}

const NO_EVENTS = { onMessage() {}, onExit() {}, onReady() {} };

Deno.test("slow start: 'still starting' at doubling intervals, and startingSeconds while starting", async () => {
  const { lines, log } = capture();
  const sup = new Supervisor(
    options(log, "deno", ["run", "--no-prompt", "--allow-env", FIXTURE, "--init-delay=1500"], {
      slowStartMs: 100,
    }),
    NO_EVENTS,
  );
  try {
    const ready = sup.ready();
    assert.equal(sup.state, "starting");
    assert.equal(typeof sup.startingSeconds, "number");
    await ready;
    assert.equal(sup.startingSeconds, null);
    const slow = lines.filter((l) => l.includes("still starting (no answer to initialize yet)"));
    // 100, 200, 400, 800 ms… after the start: a handful of lines, not one every 100 ms.
    assert.ok(slow.length >= 2 && slow.length <= 7, slow.join(""));
    assert.ok(lines.some((l) => /child ready .*seconds=/.test(l)));
  } finally {
    await sup.close();
  }
});

Deno.test("slowStartHint names the launcher that downloads on first use", () => {
  assert.match(slowStartHint("npx"), /^npx may be downloading/);
  assert.match(slowStartHint("/usr/local/bin/uvx"), /^uvx may be downloading/);
  assert.match(slowStartHint("docker"), /pulling the image/);
  assert.equal(slowStartHint("python3"), "no answer to initialize yet");
});

Deno.test("a timer-driven restart asks admit first; refused, it is postponed and nothing spawns", async () => {
  const { lines, log } = capture();
  let admitted = 0;
  const sup = new Supervisor(
    options(log, "sh", ["-c", "exit 1"], {
      admit: () => {
        if (admitted++ > 0) throw new UnavailableError("no room (limits.childrenTotal)", 5000);
      },
    }),
    NO_EVENTS,
  );
  try {
    await assert.rejects(sup.ready(), /exited during start-up/);
    await eventually(() => lines.some((l) => l.includes("restart postponed")), 10_000, "postponed");
    assert.equal(sup.state, "stopped");
    assert.equal(lines.filter((l) => l.includes("child started")).length, 1);
    await assert.rejects(sup.ready(), UnavailableError, "a start on demand asks admit too");
  } finally {
    await sup.close();
  }
});

/** A group leader with a grandchild that ignores SIGTERM and does not hold the pipes. */
function leaderWithStubbornGrandchild(groups: ProcessGroups): Child {
  const script = "(trap '' TERM; exec sleep 300) </dev/null >/dev/null 2>&1 & exec sleep 300";
  return Child.spawn(
    { server: "g", command: "sh", args: ["-c", script], env: {}, maxLineBytes: 1000 },
    createLogger({ write: () => {} }),
    groups,
  );
}

/**
 * Both processes of the group run `sleep`: the grandchild exists before its `trap` runs, so only
 * once it has exec'd is SIGTERM known to be ignored (the ignored disposition survives exec).
 */
function stubbornReady(group: number): boolean {
  const live = liveInGroups([group]);
  return live.length === 2 && live.every((p) => p.command === "sleep");
}

Deno.test("process groups: a leader's unplanned exit sends its group SIGTERM, then SIGKILL", async () => {
  const groups = new ProcessGroups(createLogger({ write: () => {} }), 300);
  const child = leaderWithStubbornGrandchild(groups);
  try {
    await eventually(() => stubbornReady(child.pid), 5000, "the grandchild");
    Deno.kill(child.pid, "SIGKILL");
    await child.exited;
    assert.deepEqual(groups.open, [child.pid], "tracked until SIGKILL reached it");
    await eventually(() => liveInGroups([child.pid]).length === 0, 10_000, "the group gone");
    await eventually(() => groups.open.length === 0, 5000, "the group forgotten");
  } finally {
    await groups.sweep();
  }
});

Deno.test("process groups: the shutdown sweep kills an orphaned group before its grace ends", async () => {
  const groups = new ProcessGroups(createLogger({ write: () => {} }), 600_000);
  const child = leaderWithStubbornGrandchild(groups);
  await eventually(() => stubbornReady(child.pid), 5000, "the grandchild");
  Deno.kill(child.pid, "SIGKILL");
  await child.exited;
  assert.equal(liveInGroups([child.pid]).length, 1, "SIGTERM alone leaves the stubborn one");
  assert.equal(await groups.sweep(), 1);
  await eventually(() => liveInGroups([child.pid]).length === 0, 5000, "the group gone");
  assert.deepEqual(groups.open, []);
});

Deno.test("process groups: a planned stop forgets the group; the sweep has nothing left", async () => {
  const groups = new ProcessGroups(createLogger({ write: () => {} }));
  const child = leaderWithStubbornGrandchild(groups);
  await eventually(() => stubbornReady(child.pid), 5000, "the grandchild");
  await child.stop("test", 200);
  assert.deepEqual(groups.open, [], "forgotten once SIGKILL was sent to the group");
  // SIGKILL is sent; a loaded machine may take a moment to end the processes.
  await eventually(() => liveInGroups([child.pid]).length === 0, 10_000, "the group gone");
  assert.equal(await groups.sweep(), 0);
});
