/** The proxy checks its own permissions: missing ones stop it with the flag to add, broad ones are named. */
import assert from "node:assert/strict";
import { fixtureServer, ROOT, startProxy } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";
import { loadConfig } from "../../lib/config/load.ts";
import { derivePermissions } from "../../lib/permissions/derive.ts";

async function runWith(flags: string[], config: Record<string, unknown>) {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/config.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({ listen: "127.0.0.1:0", dataDir: `${dir}/data`, ...config }),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, `${ROOT}/main.ts`, "serve", "--config", path, "--no-auth"],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(20_000),
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr), path, dir };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function derived(config: Record<string, unknown>, dir: string) {
  const path = `${dir}/config.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({ listen: "127.0.0.1:0", dataDir: `${dir}/data`, ...config }),
  );
  const loaded = await loadConfig(path, { explicit: true, env: (n) => Deno.env.get(n), cwd: dir });
  return { flags: derivePermissions(loaded, path), path };
}

Deno.test("started with one run permission missing, the proxy refuses and names the flag", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = { mcpServers: { fx: fixtureServer() } };
    const { flags, path } = await derived(config, dir);
    const narrowed = flags.map((f) => f.startsWith("--allow-run=") ? "--allow-run=kill" : f);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...narrowed, `${ROOT}/main.ts`, "serve", "--config", path, "--no-auth"],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(20_000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2);
    assert.match(stderr, /missing permission: run deno\. Add --allow-run=deno,kill/);
    assert.equal(new TextDecoder().decode(out.stdout), "", "nothing started");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing env or net permission is named too", async () => {
  const config = { mcpServers: { fx: fixtureServer() } };
  const noEnv = await runWith([
    "--no-prompt",
    "--allow-read",
    "--allow-write",
    "--allow-run",
    "--allow-net=127.0.0.1",
  ], config);
  assert.equal(noEnv.code, 2);
  assert.match(
    noEnv.stderr,
    /missing permission: env PATH\. Add --allow-env=PATH,HOME,USER,LANG,LC_\*,TZ,MCP_PROXY_CONFIG/,
  );
  const noNet = await runWith([
    "--no-prompt",
    "--allow-read",
    "--allow-write",
    "--allow-run",
    "--allow-env",
    "--allow-net=localhost",
  ], config);
  assert.equal(noNet.code, 2);
  assert.match(noNet.stderr, /missing permission: net 127\.0\.0\.1\. Add --allow-net=127\.0\.0\.1/);
});

Deno.test("started with -A it warns, naming --allow-all, and still serves", async () => {
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer() } }, { flags: () => ["-A"] });
  try {
    await proxy.waitForLog(
      /broader permission than needed: the proxy runs with --allow-all; it needs only: --no-prompt --allow-net=127\.0\.0\.1/,
    );
    const c = await connect(proxy.url("fx"));
    assert.equal(text(await c.client.callTool({ name: "echo", arguments: { text: "ok" } })), "ok");
    await c.close();
  } finally {
    await proxy.stop();
  }
});

Deno.test("an unrestricted --allow-run or --allow-net is named in a warning", async () => {
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer() } }, {
    flags: (flags) =>
      flags.map((f) =>
        f.startsWith("--allow-run=")
          ? "--allow-run"
          : f.startsWith("--allow-net=")
          ? "--allow-net"
          : f
      ),
  });
  try {
    await proxy.waitForLog(
      /broader permission than needed: --allow-run is unrestricted; this config needs --allow-run=deno,kill/,
    );
    await proxy.waitForLog(
      /broader permission than needed: --allow-net is unrestricted; this config needs --allow-net=127\.0\.0\.1/,
    );
    assert.ok(!/--allow-read is unrestricted/.test(proxy.logs()), "read was narrow, so not named");
  } finally {
    await proxy.stop();
  }
});

Deno.test("the derived flags of a login config with network lists, exactly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { flags } = await derived({
      publicUrl: "https://pi.example.ts.net",
      github: { clientId: "x", clientSecret: "y" },
      allow: { users: [1] },
      network: {
        allow: ["openai", "anthropic"],
        rangeSources: ["https://ranges.example.com/list.json"],
      },
      mcpServers: {
        files: { command: "npx", args: ["-y", "x"] },
        time: { command: "uvx", args: ["t"] },
      },
    }, dir);
    assert.deepEqual(flags, [
      "--no-prompt",
      "--allow-net=127.0.0.1,github.com,api.github.com,claude.ai,claude.com,chatgpt.com,openai.com,ranges.example.com",
      `--allow-read=${dir}/config.json,/dev/null,${dir}/data`,
      `--allow-write=${dir}/data`,
      "--allow-run=npx,uvx,kill",
      "--allow-env=PATH,HOME,USER,LANG,LC_*,TZ,MCP_PROXY_CONFIG",
      "--unstable-kv",
      "--v8-flags=--max-semi-space-size=1",
      "--unstable-no-legacy-abort",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
