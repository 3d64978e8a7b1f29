/**
 * Self-test of tests/helpers/proxy.ts: which starts need `main.ts serve` as a process, and an
 * in-process proxy behaves as the process would for what the tests read (printed URLs, log
 * lines, a reload, a stop) and refuses, clearly, what only a process can do.
 */
import assert from "node:assert/strict";
import {
  countOnce,
  fixtureServer,
  launchViaSetsid,
  needsProcess,
  startProxy,
} from "../helpers/proxy.ts";
import { type LaunchChild, launchDetached } from "../../lib/children/child.ts";
import { connect, text } from "../helpers/client.ts";

Deno.test("proxy helper: what needs a process", () => {
  assert.equal(needsProcess({}), false);
  assert.equal(needsProcess({ dir: "/tmp/x", publicPath: "/k" }), false);
  assert.equal(needsProcess({ process: true }), true);
  assert.equal(needsProcess({ flags: (f) => f }), true);
  assert.equal(needsProcess({ prefix: ["sh", "-c", 'exec "$0" "$@"'] }), true);
  assert.equal(needsProcess({ args: ["--listen", "127.0.0.1:0"] }), true);
  assert.equal(needsProcess({ unreadStderr: true }), true);
  // The config's references only: the proxy reads these while it loads the config.
  assert.equal(needsProcess({ env: { GITHUB_CLIENT_SECRET: "s", DATABASE_URL: "x" } }), false);
  // Variables the running proxy reads (its children's environment): as this process has them,
  // or of their own.
  const path = Deno.env.get("PATH");
  assert.equal(needsProcess({ env: path === undefined ? {} : { PATH: path } }), false);
  assert.equal(needsProcess({ env: { PATH: "/nowhere" } }), true);
  assert.equal(needsProcess({ env: { TZ: "Pacific/Chatham-not-ours" } }), true);
  assert.equal(needsProcess({ env: { LC_PAPER: "xx_XX.not-ours" } }), true);
});

Deno.test("proxy helper: an in-process proxy serves, logs, reloads and stops; it has no process", async () => {
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer() } });
  try {
    assert.match(proxy.stdout(), /^fx\s+http:\/\/127\.0\.0\.1:\d+\/mcp\/fx$/m);
    assert.match(proxy.admin, /^http:\/\/127\.0\.0\.1:\d+$/);
    const c = await connect(proxy.url("fx"));
    assert.equal(text(await c.client.callTool({ name: "echo", arguments: { text: "hi" } })), "hi");
    await c.close();
    await proxy.waitForLog(/session opened .*server=fx/);

    // What only a process has is refused with the way out.
    assert.throws(() => proxy.process, /in-process proxy has no process: .*process: true/);
    await assert.rejects(proxy.stop("SIGKILL"), /cannot take SIGKILL: .*process: true/);
    // A copy with one field changed (as tests make for another origin) leaves `process` out.
    const copy = { ...proxy, origin: "http://127.0.0.1:9" };
    assert.equal(copy.url("fx"), proxy.url("fx"));

    // A reload reads the file again: a broken one is logged and the running config kept.
    await Deno.writeTextFile(proxy.configPath, "{ broken");
    proxy.reload();
    await proxy.waitForLog(/config reload failed, keeping the running config/);
    assert.equal((await fetch(`${proxy.origin}/healthz`)).status, 200);
  } finally {
    const status = await proxy.stop();
    assert.deepEqual(status, { success: true, code: 0, signal: null });
  }
  assert.match(proxy.logs(), /stopping reason="received SIGTERM"[^]*shutting down/);
  // Nothing listens any more.
  await assert.rejects(fetch(`${proxy.origin}/healthz`), TypeError);
  // The temp dir with the config and the data is gone, as after a process.
  await assert.rejects(Deno.stat(proxy.dir), Deno.errors.NotFound);
});

Deno.test("proxy helper: in-process proxies count the free file descriptors once", async () => {
  const asked: number[] = [];
  const count = countOnce((enough) => (asked.push(enough), enough));
  assert.equal(count(1200), 1200);
  assert.equal(count(60), 60, "at least 60, as a count up to 60 says");
  assert.deepEqual(asked, [1200]);
  assert.equal(count(1500), 1500, "more than the last count reached: counted again");
  assert.deepEqual(asked, [1200, 1500]);
  // A count that hit the limit is the answer for any larger ask; none is none.
  const limited = countOnce((enough) => (asked.push(enough), Math.min(enough, 100)));
  assert.equal(limited(1200), 100);
  assert.equal(limited(5000), 100);
  assert.equal(limited(50), 50);
  assert.deepEqual(asked, [1200, 1500, 1200]);
  assert.equal(countOnce(() => null)(10), null);

  // An in-process proxy logs the count it was given, as a process logs its own.
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer({ warm: 0 }) } });
  try {
    await proxy.waitForLog(/open files free_at_least=\d+ reserved=\d+ maxConnections=1024/);
  } finally {
    await proxy.stop();
  }
});

Deno.test("proxy helper: children of in-process proxies start through setsid(1) as session leaders with the product's argv; a command that cannot start fails as the product's spawn does", async () => {
  const run = async (launch: LaunchChild, env: Record<string, string>, command = "sh") => {
    try {
      const child = launch(command, {
        args: [
          "-c",
          'printf "%s %s\\n" "$(ps -o pid=,pgid=,sid= -p $$)" "$(tr "\\0" " " < /proc/$$/cmdline)"',
        ],
        env,
        clearEnv: true,
        stdout: "piped",
      });
      const out = new TextDecoder().decode((await child.output()).stdout).trim().split(/\s+/);
      return { pid: child.pid, ids: out.slice(0, 3).map(Number), argv: out.slice(3, 5) };
    } catch (error) {
      return `${(error as Error).name}: ${(error as Error).message}`;
    }
  };
  const envs: Record<string, string>[] = [{ PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" }, {}];
  for (const env of envs) {
    const product = await run(launchDetached, env);
    const helper = await run(launchViaSetsid, env);
    assert.ok(typeof product === "object" && typeof helper === "object");
    assert.deepEqual(helper.ids, [helper.pid, helper.pid, helper.pid], "pid = group = session");
    assert.deepEqual(product.ids, [product.pid, product.pid, product.pid]);
    assert.deepEqual(helper.argv, product.argv, "the same argv (setsid execs in place)");
    assert.match(helper.argv[0], /^\/.*\/sh$/);
  }
  // Not on the child's PATH, or not there at all: the product's way, so the product's error.
  for (
    const [env, command] of [[{ PATH: "/nonexistent" }, "sh"], [{}, "./no-such-server"]] as const
  ) {
    const product = await run(launchDetached, env, command);
    assert.match(String(product), /^NotFound: /);
    assert.equal(await run(launchViaSetsid, env, command), product);
  }
});
