/**
 * Executables and service files: the compile tasks, the release flags (exercised with `deno run`,
 * since `deno compile` cannot download its runtime here), the release workflow and the systemd unit.
 */
import assert from "node:assert/strict";
import { freePort, ROOT } from "../helpers/proxy.ts";
import { text } from "../helpers/client.ts";
import {
  ALICE,
  connectWithLogin,
  fakeGitHub,
  GITHUB_CLIENT_ID,
  GITHUB_CLIENT_SECRET,
  TestProvider,
} from "../helpers/oauth.ts";
import { RELEASE_FLAGS } from "../../lib/config/permissions.ts";

const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
];

Deno.test("compile tasks: one per target, the config's derived flags baked in, named per target", async () => {
  const tasks: Record<string, string> =
    JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).tasks;
  for (const target of TARGETS) {
    assert.equal(
      tasks[`compile:${target}`],
      `deno compile $(deno run --quiet --allow-read --allow-env main.ts permissions) --target ${target} ` +
        `--output dist/mcp-oauth-proxy-${target} main.ts serve`,
    );
    assert.ok(tasks.compile.includes(`deno task compile:${target}`));
    assert.ok(
      tasks["compile:release"].includes(
        `--target ${target} --output dist/release/mcp-oauth-proxy-${target}`,
      ),
    );
  }
  assert.ok(tasks["compile:release"].includes("main.ts permissions --release"));
  for (
    const name of [
      "start",
      "compile",
      ...TARGETS.map((t) => `compile:${t}`),
      "compile:release",
    ]
  ) {
    assert.ok(!/(^|\s)(-A|--allow-all)(\s|$)/.test(tasks[name]), `${name} must not use -A`);
  }
});

Deno.test("release flags: the documented launchers, nothing unrestricted", () => {
  assert.ok(RELEASE_FLAGS.includes("--allow-run=npx,uvx,node,python3,docker,kill"));
  for (const flag of RELEASE_FLAGS) {
    assert.ok(
      flag === "--no-prompt" || flag === "--unstable-kv" || flag.includes("="),
      `${flag} is unrestricted`,
    );
  }
});

Deno.test("the release flags run a typical login config from its folder: sign-in and a tool call", async () => {
  const gh = await fakeGitHub();
  const dir = await Deno.makeTempDir();
  const port = await freePort();
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
      mcpServers: { echo: { command: "node", args: [`${ROOT}/tests/fixtures/echo-server.mjs`] } },
    }),
  );
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", ...RELEASE_FLAGS, `${ROOT}/main.ts`, "serve"],
    cwd: dir,
    env: { GITHUB_CLIENT_SECRET, PATH: Deno.env.get("PATH")!, HOME: Deno.env.get("HOME")! },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const errors = (async () => {
    for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  try {
    const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("/mcp/echo")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the proxy exited:\n${stderr}`);
      out += value;
    }
    reader.cancel();
    const { client } = await connectWithLogin(
      `http://127.0.0.1:${port}/mcp/echo`,
      new TestProvider(),
    );
    assert.equal(
      text(await client.callTool({ name: "echo", arguments: { text: "release build" } })),
      "release build",
    );
    await client.close();
    assert.ok(!/missing permission/.test(stderr));
    await Deno.stat(`${dir}/data/store.kv`);
  } finally {
    proc.kill("SIGTERM");
    assert.equal((await proc.status).code, 0, stderr);
    await errors;
    await gh.close();
    await Deno.remove(dir, { recursive: true });
  }
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
