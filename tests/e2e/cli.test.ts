/**
 * The command line: help, version, bad flags and configs (exit 2, nothing started), the demo,
 * `deno task start`. What only the command's code decides runs in this process (`inProcess`);
 * each command also runs as a real process (`run`), which shows the exit status.
 */
import assert from "node:assert/strict";
import { fixtureServer, ROOT } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";
import { descendants } from "../helpers/procs.ts";
import { runInProcess } from "../helpers/cli.ts";

async function run(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-run=deno,kill",
      "--allow-net=127.0.0.1",
      `${ROOT}/main.ts`,
      ...args,
    ],
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** `run` in this process: `main` with the test's environment plus `env`, in `cwd`. */
function inProcess(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  return runInProcess(args, { cwd: options.cwd, env: { ...Deno.env.toObject(), ...options.env } });
}

Deno.test("--help and --version", async () => {
  const help = await inProcess(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage:\n\s+main\.ts \[serve\] \[--config FILE\]/);
  const version = await inProcess(["--version"]);
  assert.equal(version.code, 0);
  const meta = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  assert.equal(version.stdout.trim(), meta.version);
});

Deno.test("bad flags and commands exit 2 with a message", async () => {
  const flag = await inProcess(["--bogus"]);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /error: Unknown option '--bogus'/);
  const command = await inProcess(["launch"]);
  assert.equal(command.code, 2);
  assert.match(command.stderr, /unknown command "launch"/);
});

Deno.test("a bad config exits 2 naming the key, and starts nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/config.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        listen: "127.0.0.1:0",
        mcpServers: { files: { command: "npx", args: ["-y", 7] } },
      }),
    );
    const res = await run(["serve", "--config", config]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /mcpServers\.files\.args\[1\]: expected a string/);
    assert.equal(res.stdout, "", "no URL was printed: nothing started");
    const missing = await inProcess(["--config", `${dir}/nope.json`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /config file not found/);
    const viaEnv = await inProcess([], { env: { MCP_PROXY_CONFIG: `${dir}/nope.json` } });
    assert.equal(viaEnv.code, 2, "MCP_PROXY_CONFIG is honoured");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with no config.json the demo starts on loopback and its tools work", async () => {
  const dir = await Deno.makeTempDir();
  const flags = (await inProcess(["permissions", "--listen", "127.0.0.1:0"], { cwd: dir })).stdout
    .trim().split(" ");
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, `${ROOT}/main.ts`, "--listen", "127.0.0.1:0"],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const { line, rest } = await firstUrl(proc.stdout, /how to write|config\.json \(see/);
    assert.match(line, /^demo {2}http:\/\/127\.0\.0\.1:\d+\/mcp\/demo$/);
    assert.match(rest, /npx @modelcontextprotocol\/inspector/);
    const c = await connect(line.split(/\s+/)[1]);
    assert.equal(text(await c.client.callTool({ name: "add", arguments: { a: 20, b: 22 } })), "42");
    await c.close();
  } finally {
    proc.kill("SIGTERM");
    assert.equal((await proc.status).code, 0);
    await proc.stderr.cancel();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task start runs the proxy with the derived flags; --no-auth serves a config without login, with a warning", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      listen: "127.0.0.1:0",
      dataDir: `${dir}/data`,
      mcpServers: { a: fixtureServer() },
    }),
  );
  const task = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "start", "--no-auth"],
    cwd: ROOT,
    env: { MCP_PROXY_CONFIG: `${dir}/config.json` },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(task.stderr).text();
  try {
    const { line } = await firstUrl(task.stdout);
    assert.match(line, /^a {2}http:\/\/127\.0\.0\.1:\d+\/mcp\/a$/);
    const c = await connect(line.split(/\s+/)[1]);
    assert.equal(
      text(await c.client.callTool({ name: "echo", arguments: { text: "via task" } })),
      "via task",
    );
    await c.close();
    // The proxy process is the one running main.ts serve; its command line holds the flags.
    const proxy = descendants(task.pid).find((p) =>
      p.command === "deno" && cmdline(p.pid).includes("serve")
    );
    assert.ok(proxy, "the proxy runs under the task");
    const args = cmdline(proxy.pid);
    assert.ok(args.includes(`--allow-run=deno,kill`), args.join(" "));
    assert.ok(!args.includes("-A") && !args.includes("--allow-all"));
    Deno.kill(proxy.pid, "SIGTERM");
    // The task exits with the proxy's status.
    assert.equal((await task.status).code, 0);
    assert.match(await stderr, /^\S+ warn {2}login is off \(--no-auth\): anyone who can reach/m);
  } finally {
    await task.status;
    await stderr;
    await Deno.remove(dir, { recursive: true });
  }
});

function cmdline(pid: number): string[] {
  return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
}

async function firstUrl(
  stream: ReadableStream<Uint8Array>,
  until = /\n/,
): Promise<{ line: string; rest: string }> {
  let out = "";
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
    const lines = out.split("\n");
    const line = lines.find((l) => /\shttp:\/\/\S+$/.test(l));
    if (line && until.test(out.slice(out.indexOf(line) + line.length))) {
      // Keep draining in the background so the process never blocks on a full pipe.
      (async () => {
        for (;;) if ((await reader.read()).done) break;
      })().catch(() => {});
      return { line: line.trim(), rest: out };
    }
  }
  throw new Error(`no URL printed:\n${out}`);
}

Deno.test("a config without login needs --no-auth; --no-auth with login is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const plain = `${dir}/plain.json`;
    await Deno.writeTextFile(
      plain,
      JSON.stringify({ listen: "127.0.0.1:0", mcpServers: { a: { command: "deno" } } }),
    );
    const refused = await inProcess(["--config", plain]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /login is not configured.*--no-auth/s);
    assert.equal(refused.stdout, "");

    const login = `${dir}/login.json`;
    await Deno.writeTextFile(
      login,
      JSON.stringify({
        listen: "127.0.0.1:0",
        publicUrl: "https://x.example",
        github: { clientId: "a", clientSecret: "b" },
        allow: { users: [1] },
        mcpServers: { a: { command: "deno" } },
      }),
    );
    const both = await inProcess(["--config", login, "--no-auth"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--no-auth conflicts with the config's "github" section/);

    // Served with --no-auth (as a real process, with its warning): "deno task start" above.
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("permissions needs only the names of referenced variables, not their values", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/config.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        publicUrl: "https://x.example",
        github: { clientId: "a", clientSecret: "${MOP_TEST_UNSET_SECRET}" },
        allow: { users: [1] },
        mcpServers: { a: { command: "deno" } },
      }),
    );
    const res = await run(["permissions", "--config", path]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /--allow-env=\S*MOP_TEST_UNSET_SECRET/);
    // serve itself still refuses the unset variable, naming the key.
    const serve = await inProcess(["--config", path]);
    assert.equal(serve.code, 2);
    assert.match(
      serve.stderr,
      /github\.clientSecret: environment variable MOP_TEST_UNSET_SECRET is not set/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
