/**
 * Logs a person can read: one format per stream (text by default, JSON Lines with
 * `logFormat: "json"`), every line with a time and a level, a child's stderr attributed to it,
 * the access log governed by `logLevel` and sent where `accessLog` says.
 */
import assert from "node:assert/strict";
import { FIXTURE, fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";
import { parseLogLine, records } from "../helpers/logs.ts";
import { eventually } from "../helpers/procs.ts";

/** A child whose shell writes a coloured line to stderr first, as Deno's "Download" lines are. */
const colourful = {
  command: "sh",
  args: [
    "-c",
    `printf '\\033[0m\\033[32mDownload\\033[0m https://registry.example/pkg\\n' >&2; ` +
    `exec ${Deno.execPath()} run --no-prompt --allow-env ${FIXTURE}`,
  ],
};

/** Drives one proxy through start, a session, a tool call, child stderr, a failed reload, stop. */
async function exercise(proxy: ProxyProcess): Promise<string> {
  const c = await connect(proxy.url("fx"));
  assert.equal(text(await c.client.callTool({ name: "echo", arguments: { text: "hi" } })), "hi");
  await c.client.callTool({ name: "stderr", arguments: { lines: 1 } });
  await c.close();
  await proxy.waitForLog(/fixture stderr line 1/);
  await proxy.waitForLog(/Download/);
  await Deno.writeTextFile(proxy.configPath, "{ broken");
  proxy.reload();
  await proxy.waitForLog(/config reload failed, keeping the running config/);
  assert.equal((await proxy.stop()).code, 0);
  return proxy.logs();
}

Deno.test("text by default: every stderr line has a time and a level; child stderr is attributed and uncoloured", async () => {
  // The process's stderr, whatever writes to it.
  const proxy = await startProxy({ mcpServers: { fx: colourful } }, { process: true });
  const logs = await exercise(proxy);
  const lines = logs.split("\n").filter((l) => l !== "");
  const unreadable = lines.filter((l) => parseLogLine(l) === null);
  assert.deepEqual(unreadable, [], "every line is `time level message key=value…`");
  assert.ok(lines.every((l) => !l.startsWith("{")), "no JSON lines in the text format");
  assert.ok(!logs.includes("\x1b"), "no terminal escape sequences");

  const child = lines.map(parseLogLine).filter((l) => l!.message === "child stderr");
  assert.ok(child.length >= 2);
  for (const l of child) assert.match(String(l!.fields.child), /^fx#\d+$/);
  assert.ok(child.some((l) => l!.fields.text === "fixture stderr line 1"));
  assert.ok(child.some((l) => l!.fields.text === "Download https://registry.example/pkg"));

  const reload = lines.map(parseLogLine).find((l) => /config reload failed/.test(l!.message))!;
  assert.equal(reload.level, "error");
  assert.match(String(reload.fields.problems), /line 1/);

  const access = records(logs, "access");
  assert.ok(access.some((a) => a.route === "mcp" && a.status === 200 && a.rpc === "tools/call"));
  const audit = records(logs, "audit");
  assert.deepEqual(audit.map((a) => [a.tool, a.outcome, a.level]), [
    ["echo", "ok", "info"],
    ["stderr", "ok", "info"],
  ]);
});

Deno.test('logFormat "json": every stderr line is one JSON object with time and level', async () => {
  const proxy = await startProxy({ mcpServers: { fx: colourful }, logFormat: "json" }, {
    process: true,
  });
  const logs = await exercise(proxy);
  const lines = logs.split("\n").filter((l) => l !== "");
  const parsed = lines.map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      return l;
    }
  });
  assert.deepEqual(parsed.filter((p) => typeof p === "string"), [], "only JSON lines");
  for (const p of parsed) {
    assert.ok(!Number.isNaN(Date.parse(p.time)), `time in ${JSON.stringify(p)}`);
    assert.match(p.level, /^(debug|info|warn|error)$/);
    assert.ok(typeof (p.msg ?? p.type) === "string");
  }
  assert.ok(
    parsed.some((p) =>
      p.msg === "child stderr" && p.child === "fx#1" && p.text === "fixture stderr line 1"
    ),
  );
  const access = parsed.filter((p) => p.type === "access");
  assert.ok(access.length > 0 && lines.some((l) => l.startsWith('{"type":"access","time":')));
  const audit = parsed.find((p) => p.type === "audit" && p.tool === "echo");
  assert.equal(audit.outcome, "ok");
  assert.ok(parsed.some((p) => p.level === "error" && /config reload failed/.test(p.msg)));
});

Deno.test("accessLog: a file of its own (same format), off, and logLevel warn silences it", async (t) => {
  await t.step("a file: access lines there, none on stderr", async () => {
    const dir = await Deno.makeTempDir({ prefix: "mop-access-" });
    try {
      await Deno.mkdir(`${dir}/logs`);
      const proxy = await startProxy(
        { mcpServers: { fx: fixtureServer() }, accessLog: "./logs/access.log" },
        { dir },
      );
      const c = await connect(proxy.url("fx"));
      await c.client.callTool({ name: "echo", arguments: { text: "x" } });
      await c.close();
      const file = `${dir}/logs/access.log`;
      await eventually(
        () => {
          try {
            return records(Deno.readTextFileSync(file), "access").length >= 3;
          } catch {
            return false;
          }
        },
        10_000,
        "access lines in the file",
      );
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o640);
      await proxy.stop();
      assert.deepEqual(records(proxy.logs(), "access"), []);
      assert.ok(records(proxy.logs(), "audit").length === 1, "the audit log stays on stderr");
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });

  for (
    const [name, extra] of [["off", { accessLog: "off" }], ["logLevel warn", {
      logLevel: "warn",
    }]] as const
  ) {
    await t.step(name, async () => {
      const proxy = await startProxy({ mcpServers: { fx: fixtureServer() }, ...extra });
      try {
        const c = await connect(proxy.url("fx"));
        await c.client.callTool({ name: "echo", arguments: { text: "x" } });
        await c.close();
        // The audit line comes after the call's access line would have.
        await proxy.waitForLog(/ audit .*tool=echo/);
      } finally {
        await proxy.stop();
      }
      assert.deepEqual(records(proxy.logs(), "access"), []);
      if (name === "logLevel warn") {
        const info = proxy.logs().split("\n").map(parseLogLine).filter((l) =>
          l && l.level === "info" && l.message !== "audit"
        );
        assert.deepEqual(info, [], "no info lines but the audit log");
      }
    });
  }
});

Deno.test("an access log file the proxy cannot open stops it with a message naming the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-access-" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "");
    await assert.rejects(
      startProxy({ mcpServers: { fx: fixtureServer() }, accessLog: "./file/access.log" }, {
        dir,
        process: true,
      }),
      (error: Error) => {
        assert.match(
          error.message,
          new RegExp(`error: cannot open the access log ${dir}/file/access\\.log: Not a directory`),
        );
        return true;
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
