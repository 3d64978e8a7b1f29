/**
 * The `deno task` wrappers, run through `deno task` itself: every task honours `--config` and
 * `--listen` (the flags are derived from them, by the launcher, lib/cli/launch.ts), a config
 * mistake under any task is its message and exit code 2 and nothing else, exit codes and
 * signals pass through, and compiling never proceeds without a config's flags. A config mistake
 * under the tasks other than `start` runs the launcher in this process (`runTaskInProcess`): its
 * plan is refused before anything would run.
 */
import assert from "node:assert/strict";
import { cliEnv, runTask, runTaskInProcess } from "../helpers/cli.ts";
import { onFreePort, ROOT } from "../helpers/proxy.ts";
import { alive, descendants, eventually } from "../helpers/procs.ts";
import { shellWord } from "../../lib/cli/common.ts";
import { deriveServeFlags } from "../../lib/cli/serve-options.ts";
import { COMPILE_TARGETS } from "../../lib/cli/task-plan.ts";

const LAUNCHER_FLAGS = [
  "--quiet",
  "--no-prompt",
  "--allow-read",
  "--allow-env",
  "--allow-run=deno",
];
const BAD_ARGS = "mcpServers.files.args[1]: expected a string, got a number";

/** A temporary folder with a config (`good.json`) and a config with a mistake (`bad.json`). */
async function configs(listen = "127.0.0.1:0") {
  const dir = await Deno.makeTempDir();
  const good = `${dir}/good.json`;
  await Deno.writeTextFile(
    good,
    JSON.stringify({
      listen,
      // The owner's listener on a port chosen at start (the default, listen + 1, may be taken).
      admin: { listen: "127.0.0.1:0" },
      dataDir: "data",
      mcpServers: {
        demo: { command: "deno", args: ["run", "--no-prompt", `${ROOT}/examples/demo-server.ts`] },
      },
    }),
  );
  const bad = `${dir}/bad.json`;
  await Deno.writeTextFile(
    bad,
    JSON.stringify({ mcpServers: { files: { command: "npx", args: ["-y", 1] } } }),
  );
  // A login config (clients and grants exist only with login); its secret need not be set.
  const login = `${dir}/login.json`;
  await Deno.writeTextFile(
    login,
    JSON.stringify({
      publicUrl: "https://pi.example.ts.net",
      dataDir: "data",
      github: { clientId: "Ov23liTaskTestAbc001", clientSecret: "${GITHUB_CLIENT_SECRET}" },
      allow: { users: ["octocat"] },
      mcpServers: { files: { command: "npx", args: ["-y", "files"] } },
    }),
  );
  return { dir, good, bad, login };
}

function cmdline(pid: number): string[] {
  return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
}

/** The flags of a `deno run … <script>` command line: the words between `run` and the script. */
function flagsOf(args: string[], script: string): string[] {
  return args.slice(args.indexOf("run") + 1, args.findIndex((a) => a.endsWith(script)));
}

/** Reads until `pattern` shows; a stream that ends first, or stalls for 30 s, fails the test. */
async function readUntil(reader: ReadableStreamDefaultReader<string>, pattern: RegExp) {
  let out = "";
  while (!pattern.test(out)) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${pattern} within 30 s: ${out}`)), 30_000);
    });
    const { value, done } = await Promise.race([reader.read(), stalled]).finally(() =>
      clearTimeout(timer)
    );
    if (done) throw new Error(`ended before ${pattern}: ${out}`);
    out += value;
  }
  return out;
}

/**
 * `deno task start --config <good> --listen <a port picked now> --no-auth` in its own session, up
 * to its first printed line; a port another process took meanwhile is picked again.
 */
function startOnFreePort(good: string) {
  return onFreePort(async (port) => {
    const listen = `127.0.0.1:${port}`;
    // Its own session, as a terminal gives it: Ctrl-C signals the whole foreground group.
    const task = new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "start", "--config", good, "--listen", listen, "--no-auth"],
      cwd: ROOT,
      env: cliEnv(),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    const out = task.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const err = task.stderr.pipeThrough(new TextDecoderStream()).getReader();
    try {
      return { task, out, err, listen, first: await readUntil(out, /\n/) };
    } catch (error) {
      if (alive(task.pid)) Deno.kill(-task.pid, "SIGKILL");
      await task.status;
      let stderr = "";
      for (let r = await err.read(); !r.done; r = await err.read()) stderr += r.value;
      throw new Error(`${(error as Error).message}\n${stderr}`);
    }
  });
}

Deno.test("deno task start --config --listen: the proxy gets exactly the flags for them; SIGHUP and Ctrl-C reach it", async () => {
  const { dir, good } = await configs();
  const { task, out, err, listen, first } = await startOnFreePort(good);
  let procs: { pid: number; args: string[] }[] = [];
  try {
    assert.match(first, new RegExp(`demo +http://${listen}/mcp/demo`));
    const health = await fetch(`http://${listen}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();

    procs = descendants(task.pid).map((p) => ({ ...p, args: cmdline(p.pid) }));
    const launcher = procs.find((p) => p.args.some((a) => a.endsWith("lib/cli/launch.ts")))!;
    const proxy = procs.find((p) => p.args.some((a) => a.endsWith("/main.ts")))!;
    assert.deepEqual(flagsOf(launcher.args, "lib/cli/launch.ts"), LAUNCHER_FLAGS);
    const expected = await deriveServeFlags({
      config: good,
      listen,
      env: () => undefined,
      cwd: ROOT,
    });
    assert.deepEqual(flagsOf(proxy.args, "/main.ts"), expected.flags);
    assert.ok(expected.flags.includes(`--allow-net=${listen},127.0.0.1`));
    assert.ok(expected.flags.includes(`--allow-read=${good},/dev/null,${dir}/data`));

    // A reload (SIGHUP) sent to the launcher reaches the proxy.
    Deno.kill(launcher.pid, "SIGHUP");
    await readUntil(err, /config reloaded/);
    // Ctrl-C: SIGINT to the task's process group; the proxy stops cleanly, nothing is left.
    Deno.kill(-task.pid, "SIGINT");
    assert.equal((await task.status).code, 0);
    for (const p of procs) assert.ok(!alive(p.pid), `${p.args.join(" ")} is still running`);
  } finally {
    // After a failure: the proxy runs in its own session, outside the task's process group.
    for (const p of procs) if (alive(p.pid)) Deno.kill(p.pid, "SIGKILL");
    if (alive(task.pid)) Deno.kill(-task.pid, "SIGKILL");
    await task.status;
    await out.cancel();
    await err.cancel();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task start: SIGTERM to the task stops the proxy, exit 0", async () => {
  const { dir, good } = await configs();
  const task = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "start", "--no-auth"],
    cwd: ROOT,
    env: cliEnv({ MCP_PROXY_CONFIG: good }),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const out = task.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    await readUntil(out, /\/mcp\/demo\n/);
    const procs = descendants(task.pid);
    task.kill("SIGTERM");
    assert.equal((await task.status).code, 0);
    await eventually(() => procs.every((p) => !alive(p.pid)), 10_000, "the proxy to exit");
  } finally {
    await out.cancel();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a config mistake under every task: the message, exit code 2, nothing else", async () => {
  const { dir, bad } = await configs();
  const missing = `${dir}/missing.json`;
  const tasks = [
    "start",
    "check-config",
    "clients",
    "grants",
    "compile",
    "compile:aarch64-unknown-linux-gnu",
  ];
  const args: Record<string, string[]> = { clients: ["list"], grants: ["list"] };
  try {
    // "start" through `deno task` itself; the others run the launcher in this process (the same
    // plan, refused before anything runs).
    const run = (task: string) => task === "start" ? runTask : runTaskInProcess;
    const runs = tasks.flatMap((task) => [
      {
        task,
        how: "env",
        res: run(task)(task, args[task] ?? [], { env: cliEnv({ MCP_PROXY_CONFIG: bad }) }),
      },
      { task, how: "flag", res: run(task)(task, [...(args[task] ?? []), "--config", missing]) },
    ]);
    for (const { task, how, res } of runs) {
      const { code, stdout, stderr } = await res;
      const expected = how === "env"
        ? `config error (${bad}):\n  ${BAD_ARGS}\n`
        : `config error (${missing}):\n  ${missing}: config file not found\n`;
      assert.equal(stderr, expected, `${task} (${how})`);
      assert.equal(stdout, "", `${task} (${how})`);
      assert.equal(code, 2, `${task} (${how})`);
    }
    await assert.rejects(Deno.stat(`${dir}/data`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("help and flag mistakes need no config; exit codes pass through", async () => {
  const { dir, bad, login } = await configs();
  try {
    const env = cliEnv({ MCP_PROXY_CONFIG: bad });
    const help = await runTask("start", ["--help"], { env });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^mcp-oauth-proxy .*\n\nUsage:/);
    const wrong = await runTask("start", ["--bogus"], { env });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /^error: Unknown option '--bogus'/);
    const grantsHelp = await runTask("grants", ["--help"], { env });
    assert.equal(grantsHelp.code, 0);
    assert.match(grantsHelp.stdout, /main\.ts grants list/);
    // `grants revoke` of an id that does not exist exits 1 in the child: so does the task.
    const unknown = await runTask("grants", ["revoke", "nope", "--config", login]);
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.match(unknown.stderr, /no grant nope/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check-config (with --listen), clients, grants and init honour --config through deno task", async () => {
  const { dir, good, login } = await configs();
  try {
    const check = await runTask("check-config", ["--config", good, "--listen", "127.0.0.1:8097"]);
    assert.equal(check.code, 0, check.stderr);
    assert.ok(check.stdout.includes(`${good}: valid\n`), check.stdout);
    // The flags "deno task start" would use with the same --config and --listen.
    assert.match(
      check.stdout,
      new RegExp(
        `--allow-net=127\\.0\\.0\\.1:8097,127\\.0\\.0\\.1 --allow-read=${good},/dev/null,${dir}/data `,
      ),
    );
    for (const command of ["clients", "grants"]) {
      const list = await runTask(command, ["list", `--config=${login}`]);
      assert.equal(list.code, 0, list.stderr);
      assert.equal(list.stdout, `no ${command}\n`);
    }
    await Deno.mkdir(`${dir}/sub`);
    const target = `${dir}/sub/new.json`;
    const init = await runTask("init", [
      "--config",
      target,
      "--public-url",
      "https://pi.example.ts.net",
      "--github-client-id",
      "Ov23liTaskTestAbc001",
      "--allow-user",
      "octocat",
      "--server",
      "files",
      "--command",
      "npx",
    ]);
    assert.equal(init.code, 0, init.stderr);
    assert.match(await Deno.readTextFile(target), /"Ov23liTaskTestAbc001"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compile tasks: the config's flags for --config/--installed-config/--listen, nothing baked after main.ts", async () => {
  const { dir, good } = await configs();
  try {
    const installed = "/var/lib/mcp-oauth-proxy/config.json";
    const listen = "127.0.0.1:8093";
    const expected = await deriveServeFlags({
      config: good,
      listen,
      installedAt: installed,
      env: () => undefined,
      cwd: ROOT,
    });
    assert.ok(
      expected.flags.includes(
        "--allow-read=/var/lib/mcp-oauth-proxy/config.json,/dev/null,/var/lib/mcp-oauth-proxy/data",
      ),
    );
    assert.ok(expected.flags.includes(`--allow-net=${listen},127.0.0.1`));
    const args = [
      "--config",
      good,
      "--installed-config",
      installed,
      "--listen",
      listen,
      "--dry-run",
    ];
    const all = await runTask("compile", args);
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trim().split("\n");
    assert.equal(lines.length, COMPILE_TARGETS.length);
    COMPILE_TARGETS.forEach((target, i) => {
      const words = [
        "deno",
        "compile",
        ...expected.flags,
        "--target",
        target,
        "--output",
        `dist/mcp-oauth-proxy-${target}`,
        `${ROOT}/main.ts`,
      ];
      assert.equal(lines[i], words.map(shellWord).join(" "));
    });
    const one = await runTask("compile:aarch64-unknown-linux-gnu", args);
    assert.equal(one.stdout, `${lines[1]}\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
