/**
 * Fault measurements by hand (not part of `deno task bench`): what the proxy does when it runs
 * out of file descriptors, and when nobody reads its stderr.
 *
 *   deno run -A bench/faults.ts fd [--limit 256] [--connections 300]
 *   deno run -A bench/faults.ts stderr [--calls 2000]
 *
 * `fd` starts the proxy under `ulimit -n LIMIT` with a server whose shell leaves a grandchild
 * (`sleep`), opens CONNECTIONS connections that never finish their headers, and reports whether
 * the proxy survived, when /healthz answered again, and whether the grandchild outlived it.
 * `stderr` starts the proxy with a stderr pipe that is never read and makes CALLS tool calls,
 * each with a 5 s deadline, reporting how many were answered.
 */
import { parseArgs } from "node:util";
import { FIXTURE, ROOT } from "../tests/helpers/proxy.ts";
import { descendants, liveInGroups } from "../tests/helpers/procs.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    limit: { type: "string", default: "256" },
    connections: { type: "string", default: "300" },
    calls: { type: "string", default: "2000" },
  },
  allowPositionals: true,
});

interface Started {
  process: Deno.ChildProcess;
  origin: string;
  /** The owner's listener (/metrics). */
  admin: string;
  dir: string;
}

/** Starts `main.ts serve --no-auth` with the derived flags, through `sh -c` (for ulimit). */
async function start(
  config: unknown,
  shellPrefix: string,
  stderr: "piped" | "null",
): Promise<Started> {
  const dir = await Deno.makeTempDir({ prefix: "mop-faults-" });
  const configPath = `${dir}/config.json`;
  await Deno.writeTextFile(configPath, JSON.stringify(config));
  const flags = new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-read", "--allow-env", `${ROOT}/main.ts`, "permissions"],
      env: { MCP_PROXY_CONFIG: configPath },
      stderr: "null",
    }).output()).stdout,
  ).trim();
  const line = `${shellPrefix}exec ${Deno.execPath()} run ${flags} ${ROOT}/main.ts serve ` +
    `--config ${configPath} --no-auth`;
  const process = new Deno.Command("sh", {
    args: ["-c", line],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr,
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const owner = /Owner endpoints .*?(http:\/\/\S+)\/metrics /;
  while (!/http:\/\/\S+\/mcp\/\S+/.test(out) || !owner.test(out)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`proxy exited at start:\n${out}`);
    out += value;
  }
  // Keep draining stdout so that it never blocks.
  (async () => {
    for (;;) if ((await reader.read()).done) break;
  })();
  const origin = new URL(/http:\/\/\S+\/mcp\/\S+/.exec(out)![0]).origin;
  return { process, origin, admin: owner.exec(out)![1], dir } as Started;
}

async function rpc(url: string, session: string | null, body: unknown, timeoutMs = 5000) {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": "2025-06-18",
  };
  if (session) headers["mcp-session-id"] = session;
  const res = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.text();
  return res;
}

async function openSession(url: string): Promise<string> {
  const res = await rpc(url, null, {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name: "faults", version: "1" },
    },
  }, 60_000);
  const session = res.headers.get("mcp-session-id")!;
  await rpc(url, session, { jsonrpc: "2.0", method: "notifications/initialized" });
  return session;
}

/** A client without pooled connections: each /healthz needs a new connection. */
const fresh = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

async function healthy(origin: string): Promise<number> {
  try {
    const res = await fetch(`${origin}/healthz`, {
      signal: AbortSignal.timeout(2000),
      client: fresh,
    });
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

async function fd(): Promise<void> {
  const limit = Number(values.limit);
  const count = Number(values.connections);
  const cmd = `sleep 300 & exec ${Deno.execPath()} run --no-prompt --allow-env ${FIXTURE}`;
  const p = await start(
    { listen: "127.0.0.1:0", mcpServers: { a: { command: "sh", args: ["-c", cmd] } } },
    `ulimit -n ${limit}; `,
    "piped",
  );
  let logs = "";
  const pumped = p.process.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (logs += chunk) }),
  );
  const url = `${p.origin}/mcp/a`;
  const session = await openSession(url);
  await rpc(url, session, {
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: { name: "echo", arguments: { text: "x" } },
  });
  const groups = [
    ...new Set(descendants(p.process.pid).filter((d) => d.command === "sleep").map((d) => d.pgid)),
  ];
  const { port } = new URL(p.origin);
  const slow: Deno.TcpConn[] = [];
  const partial = new TextEncoder().encode(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
  let exit: Deno.CommandStatus | undefined;
  p.process.status.then((s) => exit = s);
  for (let i = 0; i < count && !exit; i++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
      conn.write(partial).catch(() => {});
      slow.push(conn);
    } catch {
      break;
    }
  }
  const opened = performance.now();
  let firstOk: number | undefined;
  let refused = 0;
  while (!exit && performance.now() - opened < 30_000) {
    const status = await healthy(p.origin);
    if (status === 200) {
      firstOk = performance.now() - opened;
      break;
    }
    refused++;
    await new Promise((r) => setTimeout(r, 250));
  }
  for (const c of slow) {
    try {
      c.close();
    } catch { /* closed by the proxy */ }
  }
  if (!exit) {
    p.process.kill("SIGTERM");
    await p.process.status;
  }
  await pumped;
  await new Promise((r) => setTimeout(r, 2000));
  const left = liveInGroups(groups);
  const notable = /open files|connection limit|cannot accept|too many open|stopping|error/i;
  console.log(logs.split("\n").filter((l) => notable.test(l)).slice(0, 12).join("\n"));
  console.log(
    JSON.stringify(
      {
        limit,
        connectionsOpened: slow.length,
        proxyExited: exit ? `code ${exit.code}` : "no",
        healthzAnsweredAfterMs: firstOk === undefined ? null : Math.round(firstOk),
        healthzAttemptsRefused: refused,
        grandchildrenLeftAfterExit: left.length,
      },
      null,
      2,
    ),
  );
  for (const g of left) Deno.kill(g.pid, "SIGKILL");
  await Deno.remove(p.dir, { recursive: true });
}

/** Resident memory of `pid` in MiB (Linux). */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1];
  return Math.round(Number(kb) / 1024);
}

async function stderr(): Promise<void> {
  const calls = Number(values.calls);
  const p = await start(
    { listen: "127.0.0.1:0", mcpServers: { a: { command: "deno", args: ["run", FIXTURE] } } },
    "",
    "piped",
  );
  // p.process.stderr is never read.
  const url = `${p.origin}/mcp/a`;
  const session = await openSession(url);
  let answered = 0;
  let firstFailure: string | undefined;
  for (let i = 0; i < calls; i++) {
    try {
      const res = await rpc(url, session, {
        jsonrpc: "2.0",
        id: i + 1,
        method: "tools/call",
        params: { name: "echo", arguments: { text: `call ${i}` } },
      });
      if (res.ok) answered++;
      else firstFailure ??= `HTTP ${res.status} at call ${i + 1}`;
    } catch (error) {
      firstFailure = `${(error as Error).name} at call ${i + 1}`;
      break;
    }
  }
  const health = await healthy(p.origin);
  const rss = rssMiB(p.process.pid);
  let metric: string | undefined;
  try {
    const text = await (await fetch(`${p.admin}/metrics`, { signal: AbortSignal.timeout(2000) }))
      .text();
    metric = /^mop_log_lines_dropped_total\S* \d+$/m.exec(text)?.[0];
  } catch { /* frozen */ }
  p.process.kill("SIGTERM");
  // Drain now, so that a frozen proxy can finish its writes and exit.
  await p.process.stderr.pipeTo(new WritableStream());
  await p.process.status;
  console.log(JSON.stringify(
    {
      calls,
      answered,
      firstFailure: firstFailure ?? null,
      healthzAfter: health,
      rssMiB: rss,
      metric,
    },
    null,
    2,
  ));
  await Deno.remove(p.dir, { recursive: true });
}

if (positionals[0] === "fd") await fd();
else if (positionals[0] === "stderr") await stderr();
else {
  console.error("usage: bench/faults.ts fd|stderr [--limit N] [--connections N] [--calls N]");
  Deno.exit(2);
}
