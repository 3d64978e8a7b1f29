/**
 * Executables and service files: the compile tasks, the release flags (exercised with `deno run`,
 * since `deno compile` cannot download its runtime here), the release workflow and the systemd unit.
 */
import assert from "node:assert/strict";
import { onFreePort, ROOT } from "../helpers/proxy.ts";
import { text } from "../helpers/client.ts";
import {
  ALICE,
  connectWithLogin,
  fakeGitHub,
  GITHUB_CLIENT_ID,
  GITHUB_CLIENT_SECRET,
  TestProvider,
} from "../helpers/oauth.ts";
import { RELEASE_FLAGS } from "../../lib/permissions/derive.ts";
import { COMPILE_TARGETS } from "../../lib/cli/task-plan.ts";
import { cliEnv, runMain, runTask, tableRows } from "../helpers/cli.ts";

Deno.test("the tasks run the launcher with read, env and run of deno only; none uses -A", async () => {
  const tasks: Record<string, string> =
    JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).tasks;
  const launcher =
    "deno run --quiet --no-prompt --allow-read --allow-env --allow-run=deno lib/cli/launch.ts";
  const expected: Record<string, string> = {
    start: "start",
    init: "init",
    "check-config": "check",
    clients: "clients",
    grants: "grants",
    compile: "compile",
    "compile:release": "compile:release",
    ...Object.fromEntries(COMPILE_TARGETS.map((t) => [`compile:${t}`, `compile:${t}`])),
  };
  for (const [name, task] of Object.entries(expected)) {
    assert.equal(tasks[name], `${launcher} ${task}`, name);
  }
});

Deno.test("release flags: the documented launchers, nothing unrestricted", () => {
  assert.ok(RELEASE_FLAGS.includes("--allow-run=npx,uvx,node,python3,docker,kill"));
  for (const flag of RELEASE_FLAGS) {
    assert.ok(
      flag === "--no-prompt" || flag.startsWith("--unstable-") || flag.includes("="),
      `${flag} is unrestricted`,
    );
  }
});

const UNIT = `${ROOT}/contrib/mcp-oauth-proxy.service`;
const SERVICE_HOME = "/var/lib/mcp-oauth-proxy";

/**
 * What a compiled executable receives as `Deno.args`: the arguments `deno compile` baked in after
 * the script (taken from the compile task's plan), then its own command line.
 */
async function bakedArgs(task: string): Promise<string[]> {
  const plan = await runTask(task, ["--dry-run"]);
  assert.equal(plan.code, 0, plan.stderr);
  const lines = plan.stdout.trim().split("\n");
  const after = lines.map((line) => line.slice(line.indexOf(`${ROOT}/main.ts`) + ROOT.length + 8));
  for (const rest of after) assert.equal(rest, after[0]);
  return after[0].split(" ").filter(Boolean);
}

Deno.test("the release build with the argument vectors of the unit's ExecStart and the owner commands: sign-in, a tool call, grants, clients", async () => {
  const unit = await Deno.readTextFile(UNIT);
  const execStart = unit.match(/^ExecStart=\/usr\/local\/bin\/mcp-oauth-proxy (.+)$/m);
  assert.ok(execStart, "ExecStart runs /usr/local/bin/mcp-oauth-proxy");
  assert.match(unit, new RegExp(`^WorkingDirectory=${SERVICE_HOME}$`, "m"));
  const owner = [
    ...unit.matchAll(
      /sudo -u mcp-proxy sh -c 'cd \/var\/lib\/mcp-oauth-proxy && exec mcp-oauth-proxy ([^']+)'/g,
    ),
  ].map((m) => m[1].split(" "));
  assert.deepEqual(owner, [["grants", "list"], ["clients", "list"]]);
  const baked = await bakedArgs("compile:release");
  assert.deepEqual(baked, [], "deno compile bakes no arguments in");

  const gh = await fakeGitHub();
  // The service's home, here: its paths in the unit's arguments point into this folder.
  const dir = await Deno.makeTempDir();
  const argv = (
    words: string[],
  ) => [...baked, ...words.map((w) => w.replaceAll(SERVICE_HOME, dir))];
  const { proc, port, errors, stderr } = await onFreePort(async (port) => {
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({
        publicUrl: `http://127.0.0.1:${port}`,
        listen: `127.0.0.1:${port}`,
        github: {
          clientId: GITHUB_CLIENT_ID,
          clientSecret: "${GITHUB_CLIENT_SECRET}",
          webUrl: gh.webUrl,
          apiUrl: gh.apiUrl,
        },
        allow: { users: [ALICE.id] },
        mcpServers: {
          echo: { command: "node", args: [`${ROOT}/tests/fixtures/echo-server.mjs`] },
        },
      }),
    );
    const proc = new Deno.Command(Deno.execPath(), {
      args: ["run", ...RELEASE_FLAGS, `${ROOT}/main.ts`, ...argv(execStart[1].split(" "))],
      cwd: dir,
      env: cliEnv({ GITHUB_CLIENT_SECRET }),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let text = "";
    const errors = (async () => {
      for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
    })();
    const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("/mcp/echo")) {
      const { value, done } = await reader.read();
      if (done) {
        await proc.status;
        await errors;
        throw new Error(`the proxy exited:\n${text}`);
      }
      out += value;
    }
    reader.cancel();
    return { proc, port, errors, stderr: () => text };
  });
  try {
    const { client } = await connectWithLogin(
      `http://127.0.0.1:${port}/mcp/echo`,
      new TestProvider(),
    );
    assert.equal(
      text(await client.callTool({ name: "echo", arguments: { text: "release build" } })),
      "release build",
    );
    await client.close();
    assert.ok(!/missing permission/.test(stderr()));
    await Deno.stat(`${dir}/data/store.kv`);

    // The owner's commands, in the service's folder, without the service's secret.
    const [grants, clients] = await Promise.all(
      owner.map((words) => runMain(RELEASE_FLAGS, argv(words), { cwd: dir })),
    );
    assert.equal(grants.code, 0, grants.stderr);
    assert.equal(tableRows(grants.stdout).rows.length, 1);
    assert.match(tableRows(grants.stdout).rows[0][1], new RegExp(ALICE.login));
    assert.equal(clients.code, 0, clients.stderr);
    assert.equal(tableRows(clients.stdout).rows.length, 1);
  } finally {
    proc.kill("SIGTERM");
    assert.equal((await proc.status).code, 0, stderr());
    await errors;
    await gh.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the CI workflow runs .ci/run on every push and pull request, with the release's Deno", async () => {
  const ci = await Deno.readTextFile(`${ROOT}/.github/workflows/ci.yml`);
  assert.ok(ci.includes("\non:\n  push:\n  pull_request:\n"), "push and pull_request");
  assert.match(ci, /^ {8}run: \.ci\/run$/m);
  assert.match(ci, /deno-version: v2\.9\.6/);
  // What the tests need beyond Deno: a real Chromium, node and npx, the kill command.
  assert.match(ci, /container: debian:bookworm/);
  assert.match(ci, /apt-get install -y .*\bprocps\b.*\bchromium\b/);
  assert.match(ci, /uses: actions\/setup-node@v4/);
  assert.ok((await Deno.stat(`${ROOT}/.ci/run`)).mode! & 0o100, ".ci/run is executable");
});

Deno.test("the release workflow builds on a tag with the release task; the systemd unit is sandboxed", async () => {
  const workflow = await Deno.readTextFile(`${ROOT}/.github/workflows/release.yml`);
  assert.match(workflow, /tags: \["v\*"\]/);
  assert.match(workflow, /run: deno task compile:release/);
  assert.match(workflow, /deno-version: v2\.9\.6/);
  const unit = await Deno.readTextFile(`${ROOT}/contrib/mcp-oauth-proxy.service`);
  for (
    const line of [
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ReadWritePaths=/var/lib/mcp-oauth-proxy",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "Restart=on-failure",
      "EnvironmentFile=/etc/mcp-oauth-proxy.env",
      "ExecReload=/bin/kill -HUP $MAINPID",
    ]
  ) {
    assert.ok(unit.split("\n").includes(line), line);
  }
});
