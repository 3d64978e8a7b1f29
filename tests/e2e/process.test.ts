/**
 * The proxy as an operating-system process under pressure: a low open-file limit with many
 * slow connections, connections that never finish their headers, and a stderr nobody reads.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config/load.ts";
import { derivePermissions } from "../../lib/permissions/derive.ts";
import { FIXTURE, fixtureServer, type ProxyProcess, ROOT, startProxy } from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";
import { descendants, eventually, liveInGroups } from "../helpers/procs.ts";

/** Runs the proxy with the soft and hard open-file limit at `n` (sh's ulimit, then exec). */
const withFileLimit = (n: number) => ["sh", "-c", `ulimit -n ${n} && exec "$0" "$@"`];

/** A fresh connection per request: pooled keep-alive connections would hide the cap. */
const fresh = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { client: fresh, signal: AbortSignal.timeout(5000) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

/** Opens a connection that sends part of a request's headers and then nothing. */
async function slowConnection(proxy: ProxyProcess): Promise<Deno.TcpConn> {
  const { hostname, port } = new URL(proxy.origin);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(
    new TextEncoder().encode(`GET /healthz HTTP/1.1\r\nHost: ${hostname}:${port}\r\n`),
  );
  return conn;
}

/** Resolves when the peer closed the connection (EOF or reset); throws if it never does. */
async function closedByPeer(conn: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(1024);
  const read = async () => {
    try {
      while ((await conn.read(buf)) !== null) { /* a 503 or nothing, then EOF */ }
    } catch { /* reset */ }
    return true;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const never = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), 30_000));
  const closed = await Promise.race([read(), never]);
  clearTimeout(timer);
  if (!closed) {
    conn.close();
    throw new Error("the proxy kept the connection open");
  }
}

Deno.test("under a 256 open-file limit, 300 slow connections neither end nor lock out the proxy", async () => {
  // The shell leaves a grandchild (sleep) that only a shutdown of the process group stops.
  const cmd = `sleep 300 & exec ${Deno.execPath()} run --no-prompt --allow-env ${FIXTURE}`;
  const proxy = await startProxy(
    { mcpServers: { a: { command: "sh", args: ["-c", cmd] } } },
    { prefix: withFileLimit(256) },
  );
  const slow: Deno.TcpConn[] = [];
  try {
    const line = await proxy.waitForLog(/open files .*maxConnections=\d+/);
    const cap = Number(/maxConnections=(\d+)/.exec(line)![1]);
    assert.ok(cap < 256, `the connection cap (${cap}) stays below the file limit`);
    const c = await connect(proxy.url("a"));
    assert.equal(text(await c.client.callTool({ name: "echo", arguments: { text: "x" } })), "x");
    const groups = new Set(
      descendants(proxy.process.pid).filter((p) => p.command === "sleep").map((p) => p.pgid),
    );
    assert.equal(groups.size, 1);

    for (let i = 0; i < 300; i++) slow.push(await slowConnection(proxy));
    // New clients get through: the idlest slow connection makes room for each.
    let ok = 0;
    for (let i = 0; i < 20 && ok === 0; i++) {
      if (await status(`${proxy.origin}/healthz`) === 200) ok++;
    }
    assert.equal(ok, 1, "/healthz answers a new connection");
    assert.equal(text(await c.client.callTool({ name: "echo", arguments: { text: "y" } })), "y");
    await c.close();

    const exit = await proxy.stop();
    assert.equal(exit.code, 0, "a clean stop after the storm");
    await eventually(() => liveInGroups(groups).length === 0, 5000, "the grandchild to be gone");
  } finally {
    for (const conn of slow) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    await proxy.stop("SIGKILL");
  }
});

Deno.test("a connection that does not finish its headers within limits.headerTimeout is closed", async () => {
  const proxy = await startProxy({
    mcpServers: { fx: fixtureServer() },
    limits: { headerTimeout: "1s" },
  });
  try {
    const conn = await slowConnection(proxy);
    // Without the timeout this read never ends (the test would time out).
    await closedByPeer(conn);
    conn.close();
    assert.equal(await status(`${proxy.origin}/healthz`), 200);
  } finally {
    await proxy.stop();
  }
});

Deno.test("past limits.maxConnections, an idle connection makes room; with none idle, 503", async () => {
  const proxy = await startProxy({
    mcpServers: { fx: fixtureServer() },
    limits: { maxConnections: 2 },
  });
  const held: Deno.TcpConn[] = [];
  const streams: AbortController[] = [];
  try {
    await proxy.waitForLog(/open files .*maxConnections=2\b/);
    held.push(await slowConnection(proxy), await slowConnection(proxy));
    assert.equal(await status(`${proxy.origin}/healthz`), 200, "the idlest one was closed");
    await closedByPeer(held[0]);
    // Two requests in progress (legacy SSE streams) fill the cap; nothing idle can leave.
    for (let i = 0; i < 2; i++) {
      const abort = new AbortController();
      streams.push(abort);
      const res = await fetch(`${proxy.origin}/sse/fx`, { client: fresh, signal: abort.signal });
      assert.equal(res.status, 200);
    }
    // The 503 is written as the connection is accepted, before the request is read: a raw
    // connection reads it whatever the timing (an HTTP client may call it unexpected).
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: Number(new URL(proxy.origin).port),
    });
    held.push(conn);
    const request = "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    await conn.write(new TextEncoder().encode(request)).catch(() => 0);
    const answer = await new Response(conn.readable).text();
    assert.match(
      answer,
      /^HTTP\/1\.1 503/,
      "a 503 once every connection has a request in progress",
    );
    assert.match(answer, /\r\nretry-after: 1\r\n/i);
    const body = answer.slice(answer.indexOf("\r\n\r\n") + 4);
    assert.deepEqual(JSON.parse(body), { error: "too_many_connections" });
    await proxy.waitForLog(/connection limit reached: new connections answered 503 limit=2/);
  } finally {
    for (const s of streams) s.abort();
    for (const conn of held) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    await proxy.stop();
  }
});

Deno.test("with its stderr unread, the proxy keeps answering; dropped lines are counted and reported", async () => {
  // Audit lines with the arguments make every call log 64 KiB: the pipe fills at once.
  const proxy = await startProxy(
    { mcpServers: { fx: fixtureServer({ logArguments: true }) } },
    { unreadStderr: true },
  );
  const stderr = proxy.process.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let logs = "";
  try {
    const c = await connect(proxy.url("fx"));
    const big = "x".repeat(64 * 1024);
    for (let i = 0; i < 40; i++) {
      const answer = await c.client.callTool({ name: "echo", arguments: { text: big } });
      assert.equal(text(answer).length, big.length);
    }
    assert.equal(await status(`${proxy.origin}/healthz`), 200);
    const metrics = await (await fetch(`${proxy.admin}/metrics`, { client: fresh })).text();
    const dropped = Number(/^mop_log_lines_dropped_total (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(dropped > 0, `lines were dropped and counted (${dropped})`);
    await c.close();
    // Reading again: the queued lines come out, then the report of the dropped ones.
    while (!/ \d+ log lines dropped/.test(logs)) {
      const { value, done } = await stderr.read();
      if (done) break;
      logs += value;
    }
    assert.match(logs, /warn +\d+ log lines dropped/);
  } finally {
    const drained = (async () => {
      while (!(await stderr.read()).done) { /* until the proxy exits */ }
    })();
    await proxy.stop();
    await drained;
  }
});

/** Starts `main.ts serve --no-auth` on `config` through `prefix`, and waits for its exit. */
async function serveUntilExit(config: Record<string, unknown>, dir: string, prefix: string[]) {
  const configPath = `${dir}/config.json`;
  await Deno.writeTextFile(configPath, JSON.stringify(config));
  const loaded = await loadConfig(configPath, { explicit: true, env: () => undefined, cwd: dir });
  const flags = derivePermissions(loaded, configPath);
  const [command, ...args] = [...prefix, Deno.execPath()];
  const out = await new Deno.Command(command, {
    args: [
      ...args,
      "run",
      ...flags,
      `${ROOT}/main.ts`,
      "serve",
      "--config",
      configPath,
      "--no-auth",
    ],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** Whether this machine lets an unprivileged mount namespace mount a tmpfs. */
function canMountPrivately(): boolean {
  try {
    const probe = new Deno.Command("unshare", {
      args: ["-rm", "sh", "-c", "mount -t tmpfs -o ro tmpfs /mnt"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return probe.success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "a read-only dataDir is reported naming the store and the cause, not as a listen failure",
  ignore: Deno.build.os !== "linux" || !canMountPrivately(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "mop-ro-" });
    try {
      const data = `${dir}/data`;
      await Deno.mkdir(data);
      // A downloaded range list needs the store; the data directory is a read-only tmpfs.
      const mountReadOnly = [
        "unshare",
        "-rm",
        "sh",
        "-c",
        `mount -t tmpfs -o ro tmpfs ${data} && exec "$0" "$@"`,
      ];
      const { code, stderr } = await serveUntilExit(
        {
          listen: "127.0.0.1:0",
          dataDir: data,
          network: { rangeSources: ["https://ranges.example.com/list.json"] },
          mcpServers: { fx: fixtureServer() },
        },
        dir,
        mountReadOnly,
      );
      assert.equal(code, 1);
      assert.match(
        stderr,
        new RegExp(
          `error: the store ${data}/store\\.kv cannot be used: the data directory ${data} is not writable: Read-only file system`,
        ),
      );
      assert.match(stderr, /make "dataDir" .* writable by the user running it/);
      assert.doesNotMatch(stderr, /cannot start on/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("a dataDir that cannot be created is reported naming the store and the cause", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-ro-" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "");
    const data = `${dir}/file/data`;
    const { code, stderr } = await serveUntilExit(
      {
        listen: "127.0.0.1:0",
        dataDir: data,
        network: { rangeSources: ["https://ranges.example.com/list.json"] },
        mcpServers: { fx: fixtureServer() },
      },
      dir,
      [],
    );
    assert.equal(code, 1);
    assert.match(
      stderr,
      new RegExp(
        `the store ${data}/store\\.kv cannot be used: cannot create the data directory ${data}: Not a directory`,
      ),
    );
    assert.doesNotMatch(stderr, /cannot start on/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
