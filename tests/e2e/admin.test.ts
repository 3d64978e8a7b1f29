/**
 * The admin listener as a real process: it listens on the public port + 1 by default and prints
 * its address; an admin port that is taken stops the start with a message naming admin.listen.
 */
import assert from "node:assert/strict";
import { fixtureServer, freePort, onFreePort, ROOT, startProxy } from "../helpers/proxy.ts";
import { loadConfig } from "../../lib/config/load.ts";
import { derivePermissions } from "../../lib/permissions/derive.ts";

/** A port p with p + 1 free too (a moment ago). */
async function twoFreePorts(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    try {
      Deno.listen({ hostname: "127.0.0.1", port: port + 1 }).close();
      return port;
    } catch { /* taken: try another */ }
  }
  throw new Error("no two adjacent free ports");
}

Deno.test("admin listener: by default on 127.0.0.1 at the listen port + 1, printed at start", async () => {
  const proxy = await onFreePort(
    (port) => startProxy({ listen: `127.0.0.1:${port}`, mcpServers: { fx: fixtureServer() } }),
    twoFreePorts,
  );
  const port = Number(new URL(proxy.origin).port);
  try {
    assert.equal(proxy.admin, `http://127.0.0.1:${port + 1}`);
    assert.match(
      proxy.stdout(),
      new RegExp(
        `^Owner endpoints \\(this machine only\\): http://127\\.0\\.0\\.1:${port + 1}/metrics ` +
          `http://127\\.0\\.0\\.1:${port + 1}/healthz$`,
        "m",
      ),
    );
    assert.ok(proxy.flags.includes(`--allow-net=127.0.0.1:${port},127.0.0.1:${port + 1}`));
    const health = await (await fetch(`${proxy.admin}/healthz`)).json();
    assert.equal(health.servers.fx.mode, "per-user");
  } finally {
    await proxy.stop();
  }
});

Deno.test("admin listener: a taken admin port stops the start and names admin.listen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-admin-" });
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const taken = (blocker.addr as Deno.NetAddr).port;
    const path = `${dir}/config.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        listen: "127.0.0.1:0",
        admin: { listen: `127.0.0.1:${taken}` },
        dataDir: `${dir}/data`,
        mcpServers: { fx: fixtureServer() },
      }),
    );
    const loaded = await loadConfig(path, { explicit: true, env: () => undefined, cwd: dir });
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...derivePermissions(loaded, path), `${ROOT}/main.ts`, "-c", path, "--no-auth"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(
      stderr,
      new RegExp(`the admin listener \\(admin\\.listen 127\\.0\\.0\\.1:${taken}\\) cannot start`),
    );
  } finally {
    blocker.close();
    await Deno.remove(dir, { recursive: true });
  }
});
