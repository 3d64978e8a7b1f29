/**
 * The public listener's request handler. Each request passes the edge (client IP, Host, size,
 * allow-list, rate limits), is matched once (routes.ts), handed to its route class's handler
 * (the authorization server's paths, or the MCP endpoints in mcp-endpoint.ts), and leaves one
 * access-log line. The owner's endpoints live on the admin listener (admin.ts).
 */
import type { Config } from "./config/schema.ts";
import { isWildcardHost } from "./config/hosts.ts";
import type { Logger } from "./log.ts";
import type { Router } from "./router/router.ts";
import { jsonResponse } from "./mcp/http.ts";
import type { OAuthService } from "./oauth/service.ts";
import { oauthRoute } from "./oauth/routes.ts";
import type { AccessEntry } from "./edge/access-log.ts";
import type { RateLimiter } from "./edge/rate-limit.ts";
import type { Metrics } from "./metrics.ts";
import { matchRoute, notFound, type Route, type RouteKind, tooMany } from "./routes.ts";
import { McpEndpoint, type McpEndpointApp, type RequestContext } from "./mcp-endpoint.ts";

export type { RequestContext } from "./mcp-endpoint.ts";

export interface App extends McpEndpointApp {
  config: Config;
  router: Router;
  log: Logger;
  /** Writes one access-log line. */
  access(entry: AccessEntry): void;
  /** The authorization server, when login is configured. */
  oauth?: OAuthService;
  metrics: Metrics;
}

type Handler = (req: Request, ctx: RequestContext, route: Route) => Promise<Response> | Response;

/** What a route class may do: whether the source-IP allow-list applies, its rate limit, its handler. */
interface RouteClass {
  guarded(): boolean;
  limiter?: RateLimiter;
  handle: Handler;
}

/** The route table: each class's allow-list rule, rate limit and handler. */
function routeTable(app: App): Record<RouteKind, RouteClass> {
  const endpoint = new McpEndpoint(app);
  const mcp: Handler = (req, ctx, route) => endpoint.serve(req, ctx, route);
  const oauth: Handler = (req, _ctx, route) =>
    (app.oauth && oauthRoute(app.oauth, req, route.path)) || notFound();
  const limits = app.edge.limits;
  const always = () => true;
  // The owner's browser opens the authorization pages from anywhere: never behind the allow-list.
  const never = () => false;
  return {
    health: { guarded: never, handle: health },
    metadata: { guarded: () => app.edge.protectMetadata, handle: oauth },
    register: { guarded: always, limiter: limits.register, handle: oauth },
    token: { guarded: always, limiter: limits.token, handle: oauth },
    revoke: { guarded: always, limiter: limits.token, handle: oauth },
    authorize: { guarded: never, limiter: limits.authorize, handle: oauth },
    consent: { guarded: never, limiter: limits.authorize, handle: oauth },
    callback: { guarded: never, limiter: limits.authorize, handle: oauth },
    mcp: { guarded: always, handle: mcp },
    sse: { guarded: always, handle: mcp },
  };
}

/** Builds the request handler for `Deno.serve`. */
export function createHandler(
  app: App,
): (req: Request, peer: string) => Promise<Response> {
  const table = routeTable(app);
  const base = app.config.auth
    ? new URL(app.config.auth.publicUrl).pathname.replace(/\/$/, "")
    : "";
  const maxHeaders = app.config.limits.maxHeaderBytes;

  /** The edge's checks, the match, the allow-list and the rate limit, then the handler. */
  const serve = async (req: Request, ctx: RequestContext): Promise<Response> => {
    if (headerBytes(req) > maxHeaders) {
      return jsonResponse(JSON.stringify({ error: "headers_too_large" }), 431);
    }
    if (!app.edge.hostAllowed(req.headers.get("host"), ctx.peer)) {
      return jsonResponse(JSON.stringify({ error: "misdirected_request" }), 421);
    }
    const route = matchRoute(new URL(req.url).pathname, ctx.local, base);
    if (!route) return notFound();
    ctx.route = route.kind;
    const rc = table[route.kind];
    const limited = rc.limiter?.take(ctx.ip);
    if (rc.guarded() && !app.edge.ipAllowed(ctx.ip, true)) {
      // 403 with the address seen, never 401, which would start an OAuth loop.
      return jsonResponse(JSON.stringify({ error: "ip_not_allowed", ip: ctx.ip }), 403);
    }
    if (limited && !limited.ok) return tooMany(limited.retryAfterS);
    return await rc.handle(req, ctx, route);
  };

  return (req, remote) => {
    // The resolver also normalises the peer (`::ffff:127.0.0.1` from a dual-stack socket).
    const { ip, peer, local } = app.edge.clientIp(remote, req.headers);
    return served(app, req, { peer, ip, local, note: {} }, serve);
  };
}

/**
 * The handler of the internal listener (several instances): a request another instance
 * forwarded, already through that instance's edge, to an MCP endpoint of a session or call held
 * here. `from` is what the verified signature and the forwarding instance say.
 */
export function createInternalHandler(
  app: App,
): (req: Request, from: { instance: string; clientIp: string; peer: string }) => Promise<Response> {
  const endpoint = new McpEndpoint(app);
  return (req, from) => {
    const ctx: RequestContext = {
      peer: from.peer,
      ip: from.clientIp,
      local: false,
      note: { instance: from.instance },
      forwarded: true,
    };
    return served(app, req, ctx, async (req, ctx) => {
      const route = matchRoute(new URL(req.url).pathname, false, "");
      if (!route || (route.kind !== "mcp" && route.kind !== "sse")) return notFound();
      ctx.route = route.kind;
      return await endpoint.serve(req, ctx, route);
    });
  };
}

/** Runs `serve`, then counts the request and writes its access-log line. */
async function served(
  app: App,
  req: Request,
  ctx: RequestContext,
  serve: (req: Request, ctx: RequestContext) => Promise<Response>,
): Promise<Response> {
  const started = performance.now();
  let response: Response;
  try {
    response = await serve(req, ctx);
  } catch (error) {
    app.log.error("request failed", { route: ctx.route ?? "none", error: String(error) });
    response = jsonResponse(JSON.stringify({ error: "server_error" }), 500);
  }
  const route = ctx.route ?? "none";
  app.metrics.requests.inc({ route, status: response.status });
  app.access({
    ip: ctx.ip,
    peer: ctx.peer === ctx.ip ? undefined : ctx.peer,
    method: req.method,
    route,
    status: response.status,
    ms: Math.round((performance.now() - started) * 10) / 10,
    ...ctx.note,
  });
  return response;
}

/** The public health check says only that the proxy answers (details: the admin listener). */
function health(): Response {
  return jsonResponse(JSON.stringify({ status: "ok" }), 200, { "cache-control": "no-store" });
}

function headerBytes(req: Request): number {
  let total = req.url.length;
  for (const [name, value] of req.headers) total += name.length + value.length + 4;
  return total;
}

/** The Host values a client on this machine uses for the listen address. */
export function listenHosts(hostname: string, port: number): string[] {
  const loopback = ["127.0.0.1", "localhost", "[::1]"];
  const hosts = hostname === "localhost" || hostname.startsWith("127.") || hostname === "::1"
    ? loopback
    // A wildcard address is reached from this machine through the loopback names.
    : isWildcardHost(hostname)
    ? [hostname.includes(":") ? `[${hostname}]` : hostname, ...loopback]
    : [hostname.includes(":") ? `[${hostname}]` : hostname];
  return hosts.map((h) => `${h}:${port}`);
}

/** The origins a browser on this machine uses for the listen address. */
export function listenOrigins(hostname: string, port: number): string[] {
  return listenHosts(hostname, port).map((h) => `http://${h}`);
}
