/**
 * The owner's listener: `/metrics` (Prometheus text format) and `/healthz` with each server's
 * children and the range lists, on a loopback address of its own (`admin.listen`).
 *
 * They are not on the public listener because a tunnel (Funnel, cloudflared, ngrok) connects from
 * 127.0.0.1: there, "this machine" and "the Internet through the tunnel" look the same. Here the
 * socket itself is the boundary; the Host check refuses DNS-rebinding pages (RFC 9110 §7.2).
 * @see https://prometheus.io/docs/instrumenting/exposition_formats/
 */
import { formatHostPort, type Listen } from "./config/hosts.ts";
import type { ServerConfig } from "./config/schema.ts";
import type { Edge } from "./edge/edge.ts";
import { type HttpServer, serveHttp } from "./http-server.ts";
import type { Logger } from "./log.ts";
import type { McpService } from "./mcp/service.ts";
import { jsonResponse } from "./mcp/http.ts";
import type { GaugeSample, Metrics } from "./metrics.ts";
import type { Router } from "./router/router.ts";
import type { Instances } from "./instances/instances.ts";
import type { StoreDescription } from "./store/store.ts";
import { listenHosts } from "./server.ts";
import { notFound } from "./routes.ts";

/** What the owner's endpoints read. */
export interface AdminApp {
  servers: ServerConfig[];
  router: Router;
  mcp: McpService;
  edge: Edge;
  metrics: Metrics;
  /** This instance among several (absent: the only one). */
  instances?: Instances;
  /** Where the state is kept (absent: no store is used, e.g. without login). */
  store?: StoreDescription;
}

export interface AdminListener {
  /** e.g. http://127.0.0.1:8081 */
  origin: string;
  /** Stops accepting and waits for open requests. */
  shutdown(): Promise<void>;
}

/** The admin listener could not be opened; the message names its address. */
export class AdminListenError extends Error {
  override name = "AdminListenError";
}

/** Connections the owner's listener accepts at once: a scraper and a person, with room to spare. */
export const ADMIN_CONNECTIONS = 16;

/** Opens the admin listener on `listen` (loopback; the config refuses anything else). */
export function startAdmin(
  listen: Listen,
  app: AdminApp,
  options: { log: Logger; headerTimeoutMs: number },
): AdminListener {
  const hosts = new Set<string>();
  const handler = createAdminHandler(app, hosts);
  let server: HttpServer;
  try {
    // The same accept loop as the public listener: accept errors never end it.
    server = serveHttp({
      hostname: listen.hostname,
      port: listen.port,
      headerTimeoutMs: options.headerTimeoutMs,
      maxConnections: ADMIN_CONNECTIONS,
      log: options.log,
    }, (req) => handler(req));
  } catch (error) {
    const where = formatHostPort(listen);
    throw new AdminListenError(
      `the admin listener (admin.listen ${where}) cannot start: ${(error as Error).message}`,
    );
  }
  const { hostname, port } = server.addr;
  for (const host of listenHosts(hostname, port)) hosts.add(host.toLowerCase());
  const origin = `http://${formatHostPort({ hostname, port })}`;
  return { origin, shutdown: () => server.shutdown() };
}

/**
 * The admin routes. `hosts` holds the Host values of the bound address (filled once it is bound);
 * any other Host is refused, so a web page that rebinds its name to 127.0.0.1 reads nothing.
 */
export function createAdminHandler(app: AdminApp, hosts: Set<string>): (req: Request) => Response {
  return (req) => {
    const host = req.headers.get("host")?.toLowerCase();
    if (!host || !hosts.has(host)) {
      return jsonResponse(JSON.stringify({ error: "misdirected_request" }), 421);
    }
    const path = new URL(req.url).pathname;
    if (path !== "/metrics" && path !== "/healthz") return notFound();
    if (req.method !== "GET" && req.method !== "HEAD") {
      return jsonResponse(JSON.stringify({ error: "method_not_allowed" }), 405, { allow: "GET" });
    }
    if (path === "/healthz") {
      const body = {
        status: "ok",
        servers: app.router.status(),
        network: app.edge.status(),
        ...(app.store ? { store: app.store } : {}),
        ...(app.instances ? { instances: app.instances.status() } : {}),
      };
      return jsonResponse(JSON.stringify(body), 200, { "cache-control": "no-store" });
    }
    return new Response(app.metrics.render(gauges(app)), {
      headers: {
        "content-type": "text/plain; version=0.0.4; charset=utf-8",
        "cache-control": "no-store",
      },
    });
  };
}

/** The gauges of /metrics, read from the live state when scraped. */
function gauges(app: AdminApp): GaugeSample[] {
  const sessions = new Map<string, number>();
  for (const s of app.mcp.sessions.all()) {
    sessions.set(s.server.name, (sessions.get(s.server.name) ?? 0) + 1);
  }
  const children: GaugeSample["samples"] = [];
  const restarts: GaugeSample["samples"] = [];
  for (const [server, status] of Object.entries(app.router.status())) {
    const list = status.children;
    const byState = new Map<string, number>();
    for (const c of list) byState.set(c.state, (byState.get(c.state) ?? 0) + 1);
    for (const [state, value] of byState) children.push({ labels: { server, state }, value });
    restarts.push({ labels: { server }, value: list.reduce((n, c) => n + c.restarts, 0) });
  }
  const lists = app.edge.status().lists;
  return [
    {
      name: "mop_sessions_active",
      help: "Live MCP sessions per server.",
      samples: app.servers.map((s) => ({
        labels: { server: s.name },
        value: sessions.get(s.name) ?? 0,
      })),
    },
    { name: "mop_children", help: "Children per server and state.", samples: children },
    {
      name: "mop_child_restarts",
      help: "Restarts of the children alive now, per server.",
      samples: restarts,
    },
    {
      name: "mop_ip_list_age_seconds",
      help: "Age of each downloaded IP-range list (-1: never loaded).",
      samples: lists.map((l) => ({ labels: { url: l.url }, value: l.ageSeconds ?? -1 })),
    },
    {
      name: "mop_ip_list_prefixes",
      help: "Prefixes in each downloaded IP-range list.",
      samples: lists.map((l) => ({ labels: { url: l.url }, value: l.count })),
    },
  ];
}
