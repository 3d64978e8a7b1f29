/**
 * A child that dies on its own (kill -9) leaves its process group behind: the proxy sends the
 * group SIGTERM, then SIGKILL, before the restarted child serves; and a shutdown sweeps every
 * group it spawned that may still have members.
 */
import assert from "node:assert/strict";
import { FIXTURE, startProxy } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";
import { alive, descendants, eventually, liveInGroups } from "../helpers/procs.ts";

/**
 * A shell that leaves two grandchildren in its group, then becomes the fixture server: one
 * grandchild records SIGTERM in `mark` and exits, the other ignores SIGTERM (only SIGKILL
 * ends it; an ignored signal stays ignored across exec). With `ownStdio` they do not hold the
 * child's pipes, so the proxy sees the exit at once; otherwise only the group kill closes them.
 */
function orphaningServer(mark: string, ownStdio = false) {
  const io = ownStdio ? " </dev/null >/dev/null 2>&1" : "";
  const script = [
    `(trap 'echo term > ${mark}; exit 0' TERM; while :; do sleep 1; done)${io} &`,
    `(trap '' TERM; exec sleep 300)${io} &`,
    `exec deno run --no-prompt --allow-env ${FIXTURE}`,
  ].join("\n");
  return { command: "sh", args: ["-c", script], restartDelay: "100ms" };
}

async function crashWithGrandchildren(url: string, proxyPid: number) {
  const c = await connect(url);
  const pid = Number(text(await c.client.callTool({ name: "pid", arguments: {} })));
  await eventually(
    () => descendants(proxyPid).filter((p) => p.command === "sleep").length >= 2,
    10_000,
    "both grandchildren",
  );
  const pgid = descendants(proxyPid).find((p) => p.pid === pid)!.pgid;
  assert.equal(pgid, pid, "the child leads its own process group");
  assert.ok(liveInGroups([pgid]).length >= 3);
  Deno.kill(pid, "SIGKILL");
  return { c, pid, pgid };
}

Deno.test("kill -9 of a child: its group gets SIGTERM then SIGKILL, and the restarted child serves", async () => {
  const mark = `${await Deno.makeTempDir({ prefix: "mop-orphans-" })}/term`;
  const proxy = await startProxy({ mcpServers: { sh: orphaningServer(mark) } }, { process: true });
  try {
    const { c, pid, pgid } = await crashWithGrandchildren(proxy.url("sh"), proxy.process.pid);
    await eventually(() => liveInGroups([pgid]).length === 0, 20_000, "the old group to be gone");
    assert.equal((await Deno.readTextFile(mark)).trim(), "term", "SIGTERM came first");
    await proxy.waitForLog(/child ready child="sh#2"/, 20_000);
    const next = Number(text(await c.client.callTool({ name: "pid", arguments: {} })));
    assert.notEqual(next, pid);
    assert.ok(!alive(pid));
    await c.close();
  } finally {
    await proxy.stop();
    await Deno.remove(mark, { recursive: true }).catch(() => {});
  }
});

Deno.test("shutdown right after a kill -9 sweeps the orphaned group (a grandchild ignoring SIGTERM included)", async () => {
  const mark = `${await Deno.makeTempDir({ prefix: "mop-orphans-" })}/term`;
  const proxy = await startProxy({ mcpServers: { sh: orphaningServer(mark, true) } }, {
    process: true,
  });
  let groups: number[] = [];
  try {
    const { c, pgid } = await crashWithGrandchildren(proxy.url("sh"), proxy.process.pid);
    groups = [pgid];
    // The exit is handled (the restart is scheduled) while SIGKILL to the old group is pending.
    await proxy.waitForLog(/child exited; restarting child="sh#1"/);
    await c.close().catch(() => {});
    const status = await proxy.stop("SIGTERM");
    assert.equal(status.code, 0);
    await eventually(() => liveInGroups(groups).length === 0, 10_000, "the swept group to be gone")
      .catch(() => assert.deepEqual(liveInGroups(groups), []));
    assert.match(proxy.logs(), /swept the process groups of exited children groups=1/);
  } finally {
    await proxy.stop("SIGKILL");
    for (const p of liveInGroups(groups)) Deno.kill(p.pid, "SIGKILL");
    await Deno.remove(mark, { recursive: true }).catch(() => {});
  }
});
