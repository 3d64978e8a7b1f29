/**
 * Shared pieces of the network-edge end-to-end tests: a proxy lifecycle wrapper, raw HTTP/1.1
 * over TCP (for Host headers and stalled bodies, which `fetch` cannot send), raw MCP calls with
 * chosen headers, and the parsed access log.
 */
import assert from "node:assert/strict";
import { type ProxyProcess, type StartOptions, startProxy } from "../../helpers/proxy.ts";
import { records } from "../../helpers/logs.ts";

/** The allow-list used across the edge tests (RFC 5737 / RFC 3849 documentation ranges). */
export const ALLOW = ["203.0.113.0/24", "2001:db8::/48"];
/** Addresses inside {@link ALLOW}. */
export const LISTED = "203.0.113.7";
export const LISTED_V6 = "2001:db8:0:42::7";
/** Addresses outside it. */
export const UNLISTED = "198.51.100.23";
export const UNLISTED_V6 = "2001:db8:1::9";

/** Believe `X-Forwarded-For` from the loopback peer (the tests' stand-in for a tunnel). */
export const TRUST_LOOPBACK = { trustedProxies: ["127.0.0.1/32"] };

export const MCP_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

/** `{"x-forwarded-for": ip}` */
export function from(ip: string): Record<string, string> {
  return { "x-forwarded-for": ip };
}

/** Starts a proxy, runs `fn`, prints the proxy's output when `fn` fails, always stops it. */
export async function withProxy(
  config: Record<string, unknown>,
  options: StartOptions,
  fn: (proxy: ProxyProcess) => Promise<void>,
): Promise<void> {
  const proxy = await startProxy(config, options);
  try {
    await fn(proxy);
  } catch (error) {
    console.log(`--- proxy stdout ---\n${proxy.stdout()}\n--- proxy stderr ---\n${proxy.logs()}`);
    throw error;
  } finally {
    await proxy.stop();
  }
}

/** One access-log line. */
export interface AccessLine {
  type: "access";
  time: string;
  level: string;
  ip: string;
  peer?: string;
  method: string;
  route: string;
  status: number;
  ms: number;
  user_id?: number;
  login?: string;
  client_id?: string;
  server?: string;
  rpc?: string;
  tool?: string;
}

/** The method of the requests {@link syncAccess} sends; their lines are left out below. */
const SYNC = "SYNC";

/** Every access-log line the proxy wrote so far, parsed (text or JSON format). */
export function accessLines(proxy: ProxyProcess): AccessLine[] {
  return records<AccessLine>(proxy.logs(), "access").filter((l) => l.method !== SYNC);
}

const syncs = new WeakMap<ProxyProcess, number>();

/**
 * Waits until the access lines of every request answered so far have been read: log lines are
 * written asynchronously, in order, so once the line of one more request (method SYNC) is
 * here, so are all before it.
 */
export async function syncAccess(proxy: ProxyProcess): Promise<void> {
  const n = (syncs.get(proxy) ?? 0) + 1;
  syncs.set(proxy, n);
  const res = await fetch(`${proxy.origin}/healthz`, { method: SYNC });
  await res.body?.cancel();
  const deadline = Date.now() + 10_000;
  while (records<AccessLine>(proxy.logs(), "access").filter((l) => l.method === SYNC).length < n) {
    if (Date.now() > deadline) throw new Error("the access line of a SYNC request never came");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until the access log has more than `count` lines; returns the newest. */
export async function nextAccess(proxy: ProxyProcess, count: number): Promise<AccessLine> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const lines = accessLines(proxy);
    if (lines.length > count) return lines.at(-1)!;
    if (Date.now() > deadline) throw new Error(`no access-log line after ${count}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A raw HTTP/1.1 answer. */
export interface RawAnswer {
  status: number;
  headers: Headers;
  body: string;
  /** Milliseconds from the end of the write to the status line. */
  ms: number;
}

/**
 * Sends `head` (request line and headers, without the blank line) plus `body` over a fresh TCP
 * connection and reads the answer. With `stall`, the body is not completed: the connection stays
 * open until the server answers or `timeoutMs` passes (then it throws).
 */
export async function raw(
  origin: string,
  head: string[],
  options: { body?: string; timeoutMs?: number } = {},
): Promise<RawAnswer> {
  const u = new URL(origin);
  const conn = await Deno.connect({
    hostname: u.hostname.replace(/^\[|\]$/g, ""),
    port: Number(u.port),
  });
  const timer = setTimeout(() => conn.close(), options.timeoutMs ?? 10_000);
  try {
    const text = head.join("\r\n") + "\r\n\r\n" + (options.body ?? "");
    await conn.write(new TextEncoder().encode(text));
    const started = performance.now();
    let data = new Uint8Array(0);
    let ms = -1;
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) break;
      if (ms < 0) ms = performance.now() - started;
      const next = new Uint8Array(data.length + n);
      next.set(data);
      next.set(buf.subarray(0, n), data.length);
      data = next;
      const parsed = parse(data);
      if (parsed) return { ...parsed, ms };
    }
    const parsed = parse(data, true);
    if (!parsed) throw new Error(`no complete HTTP answer (${data.length} bytes) from ${origin}`);
    return { ...parsed, ms };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

function parse(
  data: Uint8Array,
  atEof = false,
): { status: number; headers: Headers; body: string } | null {
  const text = new TextDecoder().decode(data);
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const headers = new Headers();
  for (const line of lines) {
    const i = line.indexOf(":");
    headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const body = text.slice(end + 4);
  const length = headers.get("content-length");
  if (length !== null && new TextEncoder().encode(body).length < Number(length)) return null;
  if (length === null && !atEof) return null;
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

/** A JSON-RPC request body. */
export function rpc(id: number, method: string, params: Record<string, unknown> = {}): string {
  return JSON.stringify({ jsonrpc: "2.0", id, method, params });
}

/** `initialize` then `notifications/initialized`; returns the session id. */
export async function openSession(
  url: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const res = await fetch(url, {
    method: "POST",
    headers: { ...MCP_HEADERS, ...headers },
    body: rpc(1, "initialize", {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name: "edge-test", version: "1.0.0" },
    }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const session = res.headers.get("mcp-session-id");
  assert.ok(session, "a session id");
  const note = await fetch(url, {
    method: "POST",
    headers: {
      ...MCP_HEADERS,
      ...headers,
      "mcp-session-id": session,
      "mcp-protocol-version": "2025-06-18",
    },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await note.body?.cancel();
  assert.equal(note.status, 202);
  return session;
}

/** A `tools/call` of the fixture's `echo` on a session; returns the status and the echoed text. */
export async function echo(
  url: string,
  session: string,
  text: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; body: string }> {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      ...MCP_HEADERS,
      ...headers,
      "mcp-session-id": session,
      "mcp-protocol-version": "2025-06-18",
    },
    body: rpc(7, "tools/call", { name: "echo", arguments: { text } }),
  });
  const body = await res.text();
  let echoed = "";
  if (res.status === 200) {
    const json = res.headers.get("content-type")?.startsWith("text/event-stream")
      ? JSON.parse(body.split("\n").filter((l) => l.startsWith("data: ")).at(-1)!.slice(6))
      : JSON.parse(body);
    echoed = json.result?.content?.[0]?.text ?? "";
  }
  return { status: res.status, text: echoed, body };
}

/** Asserts the allow-list refusal: 403, exactly `{"error":"ip_not_allowed","ip":ip}`, no challenge. */
export async function assertBlocked(res: Response, ip: string, what: string): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 403, `${what}: ${res.status} ${text}`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/, what);
  assert.deepEqual(JSON.parse(text), { error: "ip_not_allowed", ip }, what);
  assert.equal(res.headers.get("www-authenticate"), null, `${what}: no OAuth challenge`);
}

/** VmRSS of a process, in KiB. */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)![1]);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
