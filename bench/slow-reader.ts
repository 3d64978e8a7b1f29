/**
 * A client that opens an SSE stream and never reads it while the child answers large results:
 * the proxy's RSS before, at its peak, and 10 s after the child produced the last answer.
 *
 *   deno run -A bench/slow-reader.ts [legacy|batch|all] [--runs N]
 *
 * legacy: `GET /sse/fx` on a raw TCP connection that reads only the endpoint event; the calls
 *   are POSTed to the message endpoint (202), so every answer goes to the unread stream.
 * batch: one 2025-03-26 JSON-RPC batch POSTed with `Accept: text/event-stream` on a raw TCP
 *   connection that never reads: every answer goes to that one unread response stream.
 * Each runs 24 answers of 4 MiB and 100 answers of 2 MiB (the fixture's `big` tool), each on a
 * fresh proxy with default limits, and prints one table row per run.
 */
import { fixtureServer, type ProxyProcess, startProxy } from "../tests/helpers/proxy.ts";
import { initializeRequest } from "../tests/helpers/client.ts";
import { readUntil } from "../tests/helpers/sse.ts";
import { rss } from "./procs.ts";

const MiB = 1024 * 1024;
const SCENARIOS = [{ count: 24, bytes: 4 * MiB }, { count: 100, bytes: 2 * MiB }];
const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Transport = "legacy" | "batch";

interface Row {
  transport: Transport;
  answers: string;
  baselineMiB: number;
  peakMiB: number;
  afterMiB: number;
  sessionEnded: boolean;
}

function call(id: number, bytes: number) {
  return {
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name: "big", arguments: { bytes } },
  };
}

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

/** Opens the unread stream and sends the calls; returns the connection to close later. */
async function stall(proxy: ProxyProcess, transport: Transport, count: number, bytes: number) {
  const { hostname, port } = new URL(proxy.origin);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const host = `Host: ${hostname}:${port}\r\n`;
  if (transport === "legacy") {
    await conn.write(
      encoder.encode(`GET /sse/fx HTTP/1.1\r\n${host}Accept: text/event-stream\r\n\r\n`),
    );
    const endpoint = `${proxy.origin}${(await readUntil(conn, /data: (\S+)\n\n/))[1]}`;
    const init = initializeRequest("2024-11-05", "stall", 0);
    await (await post(endpoint, init)).body?.cancel();
    await (await post(endpoint, { jsonrpc: "2.0", method: "notifications/initialized" })).body
      ?.cancel();
    await Promise.all(
      Array.from({ length: count }, (_, i) => post(endpoint, call(i + 1, bytes))),
    ).then((all) => Promise.all(all.map((r) => r.body?.cancel())));
    return conn;
  }
  const init = await post(proxy.url("fx"), initializeRequest("2025-03-26", "stall", 0));
  const sid = init.headers.get("mcp-session-id")!;
  await init.body?.cancel();
  const body = JSON.stringify(Array.from({ length: count }, (_, i) => call(i + 1, bytes)));
  await conn.write(encoder.encode(
    `POST /mcp/fx HTTP/1.1\r\n${host}Content-Type: application/json\r\n` +
      `Accept: text/event-stream\r\nMcp-Session-Id: ${sid}\r\n` +
      `Mcp-Protocol-Version: 2025-03-26\r\nContent-Length: ${encoder.encode(body).length}\r\n\r\n` +
      body,
  ));
  return conn;
}

function audited(proxy: ProxyProcess): number {
  return proxy.logs().split("\n").filter((l) => /"type":"audit".*"tool":"big"/.test(l)).length;
}

async function run(transport: Transport, count: number, bytes: number): Promise<Row> {
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer({ warm: 1 }) } }, {
    process: true,
  });
  try {
    const pid = proxy.process.pid;
    // Start the child and settle before the baseline.
    await (await post(proxy.url("fx"), initializeRequest("2025-06-18", "warm", 0))).text();
    await sleep(2000);
    const baseline = rss(pid);
    let peak = baseline;
    const conn = await stall(proxy, transport, count, bytes);
    const deadline = Date.now() + 120_000;
    while (audited(proxy) < count && Date.now() < deadline) {
      peak = Math.max(peak, rss(pid));
      await sleep(200);
    }
    // "after": 10 s after the child produced the last answer.
    for (let i = 0; i < 50; i++) {
      peak = Math.max(peak, rss(pid));
      await sleep(200);
    }
    const after = rss(pid);
    const sessionEnded = /SSE stream over its queue limit/.test(proxy.logs());
    conn.close();
    return {
      transport,
      answers: `${count} × ${bytes / MiB} MiB`,
      baselineMiB: baseline / MiB,
      peakMiB: peak / MiB,
      afterMiB: after / MiB,
      sessionEnded,
    };
  } finally {
    await proxy.stop();
  }
}

if (import.meta.main) {
  const which = Deno.args.find((a) => !a.startsWith("--")) ?? "all";
  const runsAt = Deno.args.indexOf("--runs");
  const runs = runsAt >= 0 ? Number(Deno.args[runsAt + 1]) : 1;
  const transports: Transport[] = which === "all" ? ["legacy", "batch"] : [which as Transport];
  console.log("| transport | answers | RSS before | peak | after | session ended |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const transport of transports) {
    for (const { count, bytes } of SCENARIOS) {
      for (let r = 0; r < runs; r++) {
        const row = await run(transport, count, bytes);
        console.log(
          `| ${row.transport} | ${row.answers} | ${row.baselineMiB.toFixed(0)} MiB | ${
            row.peakMiB.toFixed(0)
          } MiB | ${row.afterMiB.toFixed(0)} MiB | ${row.sessionEnded ? "yes" : "no"} |`,
        );
      }
    }
  }
}
