/** `main.ts serve`: starts the proxy for a loaded config and stops it cleanly on a signal. */
import type { LoadedConfig } from "./config/load.ts";
import { createLogger, type Logger } from "./log.ts";
import { Router } from "./router/router.ts";
import { McpService } from "./mcp/service.ts";
import { createHandler, listenOrigins } from "./server.ts";
import { VERSION } from "./version.ts";

export interface RunningProxy {
  /** Origin the proxy listens on, e.g. http://127.0.0.1:8080. */
  origin: string;
  /** Stops accepting, ends streams, stops every child (and its process group). */
  shutdown(): Promise<void>;
  finished: Promise<void>;
}

const ANONYMOUS = { key: "anonymous" } as const;

/** Starts the HTTP server and the children; prints one URL line per server. */
export async function startProxy(
  loaded: LoadedConfig,
  options: { print?: (line: string) => void; log?: Logger } = {},
): Promise<RunningProxy> {
  const { config } = loaded;
  const print = options.print ?? console.log;
  const log = options.log ?? createLogger({ level: config.logLevel });
  const router = new Router({
    servers: config.servers,
    limits: config.limits,
    log,
    version: VERSION,
  });
  const mcp = new McpService(router, config.limits, log);
  const allowedOrigins = new Set(config.allowedOrigins);
  const handler = createHandler({
    config,
    router,
    mcp,
    log,
    allowedOrigins,
    authenticate: () => ANONYMOUS,
  });
  let onAddress!: (addr: Deno.NetAddr) => void;
  const address = new Promise<Deno.NetAddr>((resolve) => onAddress = resolve);
  const server = Deno.serve({
    hostname: config.listen.hostname,
    port: config.listen.port,
    onListen: (addr) => onAddress(addr),
  }, (req, info) => handler(req, { peer: info.remoteAddr.hostname }));
  const { hostname, port } = await address;
  for (const origin of listenOrigins(hostname, port)) allowedOrigins.add(origin);
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const origin = `http://${host}:${port}`;
  const width = Math.max(...config.servers.map((s) => s.name.length));
  for (const s of config.servers) print(`${s.name.padEnd(width)}  ${origin}/mcp/${s.name}`);
  if (config.demo) printDemoHelp(print, origin);
  log.info("listening", { origin, servers: config.servers.length, version: VERSION });
  router.start();
  mcp.start();
  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    stopping ??= (async () => {
      log.info("shutting down");
      const closed = server.shutdown();
      mcp.shutdown();
      await router.close();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
    })();
  return { origin, shutdown, finished: server.finished };
}

function printDemoHelp(print: (line: string) => void, origin: string): void {
  print("");
  print("No config.json found: serving the bundled demo server on loopback, without login.");
  print(`Try it with MCP Inspector:  npx @modelcontextprotocol/inspector`);
  print(`  then choose "Streamable HTTP" and enter ${origin}/mcp/demo`);
  print("To serve your own stdio servers, write config.json (see README.md, Configuration),");
  print("for example:");
  print(`  { "mcpServers": { "files": { "command": "npx", "args": ["-y",`);
  print(`      "@modelcontextprotocol/server-filesystem", "/home/me/shared"] } } }`);
}
