/**
 * The things being measured, each with one stdio server behind it: this proxy (login on, a real
 * token from the fake GitHub flow, IP allow-list on), supergateway (stateful Streamable HTTP),
 * mcp-proxy (Streamable HTTP), and direct stdio through the SDK client (the physical limit).
 * Two diagnostic variants of the proxy separate the costs of the edge: `proxy-open` (login on,
 * no allow-list) and `proxy-noauth` (`--no-auth`, no allow-list); `http-floor` is a bare
 * Deno HTTP server answering by itself (bench/floor-server.ts): the client's and HTTP's own cost.
 */
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
// @ts-types="@modelcontextprotocol/sdk/client/auth"
import { auth } from "@modelcontextprotocol/sdk/client/auth.js";
// @ts-types="@modelcontextprotocol/sdk/shared/auth"
import type { OAuthClientInformationMixed } from "@modelcontextprotocol/sdk/shared/auth.js";
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import { freePort, type ProxyProcess, ROOT, startProxy } from "../tests/helpers/proxy.ts";
import { LOGIN_ENV, loginConfig, TestProvider } from "../tests/helpers/oauth.ts";
import type { FakeGitHub } from "../tests/fixtures/fake-github.ts";
import { ENTRY } from "./install.ts";
import { proc, processes, treeRss } from "./procs.ts";

export type ServerId = "everything" | "fixture";

export interface StdioServer {
  id: ServerId;
  command: string;
  args: string[];
  /** Arguments of one `echo` call. */
  echo(text: string): Record<string, unknown>;
  /** The text `echo` answers for `text`. */
  echoed(text: string): string;
}

export const SERVERS: Record<ServerId, StdioServer> = {
  everything: {
    id: "everything",
    command: "node",
    args: [ENTRY.everything, "stdio"],
    echo: (text) => ({ message: text }),
    echoed: (text) => `Echo: ${text}`,
  },
  fixture: {
    id: "fixture",
    command: "deno",
    args: ["run", "--no-prompt", "--allow-env", `${ROOT}/bench/sdk-server.ts`],
    echo: (text) => ({ text }),
    echoed: (text) => text,
  },
};

export const PEERS = ["supergateway", "mcp-proxy"] as const;
export const PROXIES = ["proxy", "proxy-open", "proxy-noauth", "proxy-pg"] as const;
export const TARGETS = ["proxy", "supergateway", "mcp-proxy", "direct"] as const;
export const ALL_TARGETS = [
  ...TARGETS,
  "proxy-open",
  "proxy-noauth",
  "proxy-pg",
  "http-floor",
] as const;
export type TargetName = typeof ALL_TARGETS[number];

export function isPeer(t: string): boolean {
  return (PEERS as readonly string[]).includes(t);
}
export function isProxy(t: string): boolean {
  return (PROXIES as readonly string[]).includes(t);
}

export interface Session {
  client: Client;
  /** Ends the session (DELETE for HTTP; for direct stdio the last handle stops the process). */
  close(): Promise<void>;
}

export interface Memory {
  /** The bridge process alone (null for direct stdio), bytes. */
  proxy: number | null;
  /** Its anonymous memory (heaps), bytes; the rest of `proxy` is mostly mapped runtime code. */
  proxyAnon: number | null;
  /** The bridge and every descendant, or the stdio servers for direct stdio (null: none), bytes. */
  total: number | null;
  /** Child processes counted in `total`. */
  children: number;
}

/** One running target with one stdio server behind it. */
export interface Instance {
  target: TargetName;
  server: StdioServer;
  /** A new MCP session as bench user `user` (direct stdio: a new process). */
  open(user: number): Promise<Session>;
  /**
   * Sessions for the concurrency workloads. Sessions of the same user share one identity; for
   * direct stdio they share one process and one SDK client (its physical limit).
   */
  openMany(users: number[]): Promise<Session[]>;
  /** A sessionless MCP 2026-07-28 client as bench user `user` (this proxy's targets only). */
  openModern?(user: number): Promise<ModernSession>;
  memory(): Memory;
  /** The bridge's PID (undefined for direct stdio). */
  pid?: number;
  stop(): Promise<void>;
}

export const CLIENT_INFO = { name: "mcp-oauth-proxy-bench", version: "1.0.0" };

async function connectHttp(url: string, headers: Record<string, string>): Promise<Session> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers },
  });
  const client = new Client(CLIENT_INFO);
  await client.connect(transport);
  return {
    client,
    close: async () => {
      try {
        await transport.terminateSession();
      } catch { /* the session may already be gone */ }
      await client.close();
    },
  };
}

/** An SDK v2 client pinned to MCP 2026-07-28: no session, every request stands alone. */
export interface ModernSession {
  client: ModernClient;
  close(): Promise<void>;
}

async function connectModern(url: string, headers: Record<string, string>) {
  const client = new ModernClient(CLIENT_INFO, {
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  await client.connect(new ModernTransport(new URL(url), { requestInit: { headers } }));
  return { client, close: () => client.close() };
}

// ---------------------------------------------------------------------------------------------
// This proxy

export interface BenchUser {
  id: number;
  login: string;
}

/** Bench user `i` (0-based): a GitHub account in the fake, listed in `allow.users`. */
export function benchUser(i: number): BenchUser {
  return { id: 7_100_000 + i, login: `bench-user-${i}` };
}

/** The fake GitHub's current user is global: sign-ins run one at a time. */
let signInQueue: Promise<unknown> = Promise.resolve();

/** The full SDK OAuth flow (discovery, registration, consent, GitHub, token) for `user`. */
function signIn(
  gh: FakeGitHub,
  url: string,
  user: BenchUser,
  registration: { info?: OAuthClientInformationMixed },
): Promise<string> {
  const run = async () => {
    gh.setCurrentUser(user.id);
    const provider = new TestProvider({ clientName: "bench" });
    if (registration.info) provider.saveClientInformation(registration.info);
    const first = await auth(provider, { serverUrl: url });
    if (first !== "REDIRECT") throw new Error(`sign-in of ${user.login}: expected a redirect`);
    const second = await auth(provider, { serverUrl: url, authorizationCode: provider.code() });
    if (second !== "AUTHORIZED" || !provider.savedTokens) {
      throw new Error(`sign-in of ${user.login} failed: ${second}`);
    }
    registration.info ??= provider.info;
    return provider.savedTokens.access_token;
  };
  const result = signInQueue.then(run, run);
  signInQueue = result.catch(() => {});
  return result;
}

const HIGH_RATE = "100000/min";

export interface ProxyOptions {
  gh: FakeGitHub;
  /** How many bench users to allow and sign in (user i is `benchUser(i)`). */
  users: number;
  /** Diagnostics only: `--v8-flags=…` added to the proxy's derived permission flags. */
  v8Flags?: string;
  /** `proxy-pg`: an empty PostgreSQL database for its store (a URL with the password). */
  database?: () => Promise<string>;
}

export async function startProxyInstance(
  target: "proxy" | "proxy-open" | "proxy-noauth" | "proxy-pg",
  server: StdioServer,
  options: ProxyOptions,
): Promise<Instance> {
  const login = target !== "proxy-noauth";
  const users = Array.from({ length: options.users }, (_, i) => benchUser(i));
  if (login) { for (const u of users) options.gh.addUser(u); }
  const config: Record<string, unknown> = {
    mcpServers: { [server.id]: { command: server.command, args: server.args } },
  };
  if (login) {
    Object.assign(config, loginConfig(options.gh, { users: users.map((u) => u.id) }));
    config.limits = {
      registerRate: HIGH_RATE,
      tokenRate: HIGH_RATE,
      authorizeRate: HIGH_RATE,
      failedAuthRate: HIGH_RATE,
    };
  }
  if (target === "proxy" || target === "proxy-pg") config.network = { allow: ["127.0.0.0/8"] };
  const env: Record<string, string> = login
    ? { ...LOGIN_ENV }
    : { PATH: LOGIN_ENV.PATH, HOME: LOGIN_ENV.HOME };
  if (target === "proxy-pg") {
    // `proxy` with its state in PostgreSQL instead of Deno KV.
    config.store = { url: "${DATABASE_URL}" };
    env.DATABASE_URL = await options.database!();
  }
  const v8 = options.v8Flags;
  // The bench measures the proxy's own process (its RSS, its CPU, its children).
  const proxy: ProxyProcess = await startProxy(config, {
    env,
    flags: v8 ? (derived) => [...derived, `--v8-flags=${v8}`] : undefined,
    process: true,
  });
  const url = proxy.url(server.id);
  const tokens: string[] = [];
  if (login) {
    const registration: { info?: OAuthClientInformationMixed } = {};
    for (const u of users) tokens.push(await signIn(options.gh, url, u, registration));
  }
  const headers = (user: number): Record<string, string> => {
    if (!login) return {};
    const token = tokens[user];
    if (!token) throw new Error(`no token for bench user ${user} (raise ProxyOptions.users)`);
    return { authorization: `Bearer ${token}` };
  };
  const pid = proxy.process.pid;
  return {
    target,
    server,
    pid,
    open: (user) => connectHttp(url, headers(user)),
    openMany: (list) => Promise.all(list.map((u) => connectHttp(url, headers(u)))),
    openModern: (user) => connectModern(url, headers(user)),
    memory: () => {
      const m = treeRss([pid]);
      return { proxy: m.root, proxyAnon: m.rootAnon, total: m.total, children: m.children };
    },
    stop: async () => {
      const timer = setTimeout(() => {
        try {
          proxy.process.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      try {
        await proxy.stop("SIGTERM");
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The peers

async function waitForHttp(url: string, child: Deno.ChildProcess, output: () => string) {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${url}: the peer exited while starting:\n${output()}`);
    try {
      const res = await fetch(url, { method: "GET", headers: { accept: "text/event-stream" } });
      await res.body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url}: the peer did not answer within 30 s:\n${output()}`);
}

/** Stops a process by PID: SIGTERM, then SIGKILL; then every member of its group, by PID. */
async function stopGroup(child: Deno.ChildProcess, pid: number) {
  let done = false;
  const status = child.status.then(() => done = true);
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  await Promise.race([status, new Promise((r) => setTimeout(r, 3000))]);
  if (!done) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await status;
  }
  // Its children (setsid made the peer a group leader; its children stay in the group).
  const deadline = Date.now() + 2000;
  for (;;) {
    const left = processes().filter((p) => p.pgid === pid);
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      for (const p of left) {
        try {
          Deno.kill(p.pid, "SIGKILL");
        } catch { /* gone */ }
      }
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startPeer(
  target: "supergateway" | "mcp-proxy",
  server: StdioServer,
): Promise<Instance> {
  const port = await freePort();
  const args = target === "supergateway"
    ? [
      ENTRY.supergateway,
      "--stdio",
      [server.command, ...server.args].join(" "),
      "--outputTransport",
      "streamableHttp",
      "--stateful",
      "--port",
      String(port),
      "--logLevel",
      "none",
    ]
    : [
      ENTRY.mcpProxy,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--server",
      "stream",
      "--",
      server.command,
      ...server.args,
    ];
  // setsid: the peer leads its own process group, so its children can be found at the end.
  const child = new Deno.Command("setsid", {
    args: ["node", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const keep = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      output = (output + chunk).slice(-8000);
    }
  };
  keep(child.stdout).catch(() => {});
  keep(child.stderr).catch(() => {});
  const pid = child.pid;
  const url = `http://127.0.0.1:${port}/mcp`;
  try {
    await waitForHttp(url, child, () => output);
  } catch (error) {
    await stopGroup(child, pid);
    throw error;
  }
  return {
    target,
    server,
    pid,
    open: () => connectHttp(url, {}),
    openMany: (list) => Promise.all(list.map(() => connectHttp(url, {}))),
    memory: () => {
      const m = treeRss([pid]);
      return { proxy: m.root, proxyAnon: m.rootAnon, total: m.total, children: m.children };
    },
    stop: () => stopGroup(child, pid),
  };
}

/** The diagnostic `http-floor` target (see bench/floor-server.ts). */
export async function startFloor(server: StdioServer): Promise<Instance> {
  const child = new Deno.Command("setsid", {
    args: [
      Deno.execPath(),
      "run",
      "--allow-net=127.0.0.1",
      new URL("./floor-server.ts", import.meta.url).pathname,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const pid = child.pid;
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const port = await (async () => {
    const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`http-floor exited: ${out}`);
        out += value;
        const m = /listening (\d+)/.exec(out);
        if (m) return Number(m[1]);
      }
    } finally {
      clearTimeout(deadline);
    }
  })().catch(async (error) => {
    await stopGroup(child, pid);
    throw error;
  });
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const url = `http://127.0.0.1:${port}/mcp`;
  return {
    target: "http-floor",
    server,
    pid,
    open: () => connectHttp(url, {}),
    openMany: (list) => Promise.all(list.map(() => connectHttp(url, {}))),
    memory: () => {
      const m = treeRss([pid]);
      return { proxy: m.root, proxyAnon: m.rootAnon, total: m.total, children: m.children };
    },
    stop: () => stopGroup(child, pid),
  };
}

// ---------------------------------------------------------------------------------------------
// Direct stdio

export function startDirect(server: StdioServer): Instance {
  const live = new Set<StdioClientTransport>();
  const spawn = async () => {
    const transport = new StdioClientTransport({
      command: server.command === "deno" ? Deno.execPath() : server.command,
      args: server.args,
      cwd: ROOT,
      stderr: "ignore",
    });
    const client = new Client(CLIENT_INFO);
    await client.connect(transport);
    live.add(transport);
    return {
      client,
      stop: async () => {
        live.delete(transport);
        await client.close();
      },
    };
  };
  const open = async (): Promise<Session> => {
    const p = await spawn();
    return { client: p.client, close: p.stop };
  };
  return {
    target: "direct",
    server,
    open,
    openMany: async (users) => {
      const groups = new Map<number, number>();
      for (const u of users) groups.set(u, (groups.get(u) ?? 0) + 1);
      const sessions: Session[] = [];
      await Promise.all([...groups].map(async ([, count]) => {
        const p = await spawn();
        let refs = count;
        for (let i = 0; i < count; i++) {
          let closed = false;
          sessions.push({
            client: p.client,
            close: async () => {
              if (closed) return;
              closed = true;
              if (--refs === 0) await p.stop();
            },
          });
        }
      }));
      return sessions;
    },
    memory: () => {
      const pids = [...live].map((t) => t.pid).filter((p): p is number => p !== null && !!proc(p));
      const m = treeRss(pids);
      return {
        proxy: null,
        proxyAnon: null,
        total: pids.length ? m.total : null,
        children: pids.length + m.children,
      };
    },
    stop: async () => {
      await Promise.all([...live].map(async (t) => {
        live.delete(t);
        await t.close().catch(() => {});
      }));
    },
  };
}
