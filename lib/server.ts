/**
 * The route table: the only place that knows every path. Each request passes the edge (client
 * IP, Host, size, allow-list, rate limits), is matched here, handed to a plain
 * `(request, context) => Response` handler, and leaves one access-log line.
 */
import type { Config, ServerConfig } from "./config/schema.ts";
import type { Logger } from "./log.ts";
import type { Identity, Router } from "./router/router.ts";
import type { McpService } from "./mcp/service.ts";
import { StreamableHttpTransport } from "./mcp/streamable-http.ts";
import { LegacySseTransport } from "./mcp/legacy-sse.ts";
import { ErrorCode } from "./jsonrpc.ts";
import { jsonResponse, rpcError } from "./mcp/http.ts";
import type { OAuthService } from "./oauth/service.ts";
import { oauthRoute } from "./oauth/routes.ts";
import type { Edge } from "./edge/edge.ts";
import type { AccessEntry, RequestNote } from "./edge/access-log.ts";
import type { RateLimiter } from "./edge/rate-limit.ts";
import type { Metrics } from "./metrics.ts";

export interface RequestContext {
  /** The TCP peer's address. */
  peer: string;
  /** The client's address: the peer, or what a trusted proxy says. Set by the edge. */
  ip: string;
  /** A caller on this machine (a loopback peer that is not a trusted proxy). */
  local: boolean;
  /** What handlers learned, for the access log. */
  note: RequestNote;
}

export interface App {
  config: Config;
  router: Router;
  mcp: McpService;
  log: Logger;
  edge: Edge;
  /** Writes one access-log line. */
  access(entry: AccessEntry): void;
  /** Origins allowed to call the MCP endpoints from a browser (the listen origins plus extras). */
  allowedOrigins: Set<string>;
  /** The authorization server, when login is configured. */
  oauth?: OAuthService;
  metrics: Metrics;
  /** Resolves who is calling an MCP endpoint, or the response that refuses them. */
  authenticate(
    req: Request,
    server: ServerConfig,
    ctx: RequestContext,
  ): Promise<Identity | Response> | Identity | Response;
}

const NOT_FOUND = JSON.stringify({ error: "not_found" });
const CORS_ALLOW_HEADERS =
  "authorization, content-type, mcp-protocol-version, mcp-session-id, last-event-id";
const CORS_EXPOSE_HEADERS = "mcp-session-id, www-authenticate, mcp-protocol-version";
const PRM = "/.well-known/oauth-protected-resource";
const AS_PATHS = ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"];

/** The same 404 for every unknown path, so nothing is learned from probing. */
export function notFound(): Response {
  return jsonResponse(NOT_FOUND, 404);
}

/** Where a request goes, after the secret path (if any) was removed. */
interface Route {
  /** Route class for the access log and the allow-list. */
  kind: string;
  /** The path as the handlers know it (without the secret path). */
  path: string;
  /** Whether the source-IP allow-list applies. */
  guarded: boolean;
  limiter?: RateLimiter;
}

/** Builds the request handler for `Deno.serve`. */
export function createHandler(
  app: App,
): (req: Request, peer: string) => Promise<Response> {
  const servers = new Map(app.config.servers.map((s) => [s.name, s]));
  const base = app.config.auth
    ? new URL(app.config.auth.publicUrl).pathname.replace(/\/$/, "")
    : "";
  const maxHeaders = app.config.limits.maxHeaderBytes;
  const streamable = new StreamableHttpTransport(app.mcp);
  const legacy = new LegacySseTransport(app.mcp);

  // The owner's endpoints (metrics, health details) are never served here: a tunnel exposes this
  // listener, and its daemon connects from loopback. They live on the admin listener (admin.ts).
  const route = (path: string, local: boolean): Route | null => {
    if (path === "/healthz" && (base === "" || local)) {
      return { kind: "health", path, guarded: false };
    }
    // Discovery documents are found by inserting the secret path after the well-known prefix
    // (RFC 8414 §3, RFC 9728 §3.1); OpenID clients also append the well-known path to it.
    if (path.startsWith("/.well-known/")) {
      if (
        path.startsWith(PRM + base) &&
        (path.length === (PRM + base).length || path[(PRM + base).length] === "/")
      ) {
        return {
          kind: "metadata",
          path: PRM + path.slice((PRM + base).length),
          guarded: app.edge.protectMetadata,
        };
      }
      for (const as of AS_PATHS) {
        if (path === as + base) {
          return { kind: "metadata", path: as, guarded: app.edge.protectMetadata };
        }
      }
      return null;
    }
    if (base) {
      if (!path.startsWith(base + "/")) return null;
      path = path.slice(base.length);
      if (path === "/.well-known/openid-configuration") {
        return { kind: "metadata", path, guarded: app.edge.protectMetadata };
      }
      if (path === "/healthz") return { kind: "health", path, guarded: false };
    }
    const limits = app.edge.limits;
    switch (path) {
      case "/register":
        return { kind: "register", path, guarded: true, limiter: limits.register };
      case "/token":
        return { kind: "token", path, guarded: true, limiter: limits.token };
      case "/revoke":
        return { kind: "revoke", path, guarded: true, limiter: limits.token };
      case "/authorize":
      case "/consent":
      case "/auth/callback":
        // The owner's browser opens these from anywhere: never behind the IP allow-list.
        return {
          kind: path.slice(1).replace("auth/", ""),
          path,
          guarded: false,
          limiter: limits.authorize,
        };
    }
    const m = /^\/(mcp|sse)\/[^/]+(\/messages)?$/.exec(path);
    return m ? { kind: m[1], path, guarded: true } : null;
  };

  const serve = async (req: Request, ctx: RequestContext, r: Route): Promise<Response> => {
    if (r.kind === "health") return health();
    if (app.oauth && r.kind !== "mcp" && r.kind !== "sse") {
      const answer = oauthRoute(app.oauth, req, r.path);
      if (answer) return await answer;
      return notFound();
    }
    const match = /^\/(mcp|sse)\/([^/]+)(\/messages)?$/.exec(r.path);
    if (!match) return notFound();
    const [, kind, name, messages] = match;
    const server = servers.get(name);
    if (!server || (kind === "mcp" && messages) || (kind === "sse" && !app.config.legacySse)) {
      return notFound();
    }
    ctx.note.server = name;
    const origin = req.headers.get("origin");
    if (origin !== null && !app.allowedOrigins.has(origin)) {
      return rpcError(
        403,
        null,
        ErrorCode.TransportRefused,
        `origin not allowed: ${origin.slice(0, 200)}`,
      );
    }
    if (req.method === "OPTIONS") return preflight(origin);
    const tried = req.headers.has("authorization");
    if (tried) {
      // Guessing tokens costs a token from this bucket; an empty bucket refuses the caller.
      const verdict = app.edge.limits.failedAuth.check(ctx.ip);
      if (!verdict.ok) return tooMany(verdict.retryAfterS);
    }
    const identity = await app.authenticate(req, server, ctx);
    if (identity instanceof Response) {
      if (tried && identity.status === 401) app.edge.limits.failedAuth.take(ctx.ip);
      return withCors(identity, origin);
    }
    ctx.note.user_id = identity.userId;
    ctx.note.login = identity.login;
    ctx.note.client_id = identity.clientId;
    const call = { req, server, identity, note: ctx.note };
    let response: Response;
    if (kind === "mcp") response = await streamable.handle(call);
    else if (messages) {
      response = req.method === "POST" ? await legacy.post(call) : methodNotAllowed("POST");
    } else {
      response = req.method === "GET" ? legacy.open(call) : methodNotAllowed("GET");
    }
    return withCors(response, origin);
  };

  return async (req, remote) => {
    const started = performance.now();
    // The resolver also normalises the peer (`::ffff:127.0.0.1` from a dual-stack socket).
    const { ip, peer, local } = app.edge.clientIp(remote, req.headers);
    const ctx: RequestContext = { peer, ip, local, note: {} };
    let kind = "none";
    let response: Response;
    try {
      if (headerBytes(req) > maxHeaders) {
        response = jsonResponse(JSON.stringify({ error: "headers_too_large" }), 431);
      } else if (!app.edge.hostAllowed(req.headers.get("host"), peer)) {
        response = jsonResponse(JSON.stringify({ error: "misdirected_request" }), 421);
      } else {
        const r = route(new URL(req.url).pathname, local);
        if (!r) response = notFound();
        else {
          kind = r.kind;
          const limited = r.limiter?.take(ip);
          if (r.guarded && !app.edge.ipAllowed(ip, true)) {
            // 403 with the address seen, never 401, which would start an OAuth loop.
            response = jsonResponse(JSON.stringify({ error: "ip_not_allowed", ip }), 403);
          } else if (limited && !limited.ok) {
            response = tooMany(limited.retryAfterS);
          } else {
            response = await serve(req, ctx, r);
          }
        }
      }
    } catch (error) {
      app.log.error("request failed", { route: kind, error: String(error) });
      response = jsonResponse(JSON.stringify({ error: "server_error" }), 500);
    }
    app.metrics.requests.inc({ route: kind, status: response.status });
    app.access({
      time: new Date().toISOString(),
      ip,
      peer: peer === ip ? undefined : peer,
      method: req.method,
      route: kind,
      status: response.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      ...ctx.note,
    });
    return response;
  };
}

/** The public health check says only that the proxy answers (details: the admin listener). */
function health(): Response {
  return jsonResponse(JSON.stringify({ status: "ok" }), 200, { "cache-control": "no-store" });
}

function preflight(origin: string | null): Response {
  if (origin === null) {
    return new Response(null, { status: 204, headers: { allow: "GET, POST, DELETE, OPTIONS" } });
  }
  return new Response(null, {
    status: 204,
    headers: {
      "access-control-allow-origin": origin,
      "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
      "access-control-allow-headers": CORS_ALLOW_HEADERS,
      "access-control-max-age": "600",
      vary: "origin",
    },
  });
}

function withCors(response: Response, origin: string | null): Response {
  if (origin === null) return response;
  response.headers.set("access-control-allow-origin", origin);
  response.headers.set("access-control-expose-headers", CORS_EXPOSE_HEADERS);
  response.headers.append("vary", "origin");
  return response;
}

function methodNotAllowed(allow: string): Response {
  return jsonResponse(JSON.stringify({ error: "method_not_allowed" }), 405, { allow });
}

function tooMany(retryAfterS: number): Response {
  return jsonResponse(JSON.stringify({ error: "rate_limited" }), 429, {
    "retry-after": String(retryAfterS),
  });
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
    : hostname === "0.0.0.0" || hostname === "::"
    ? [hostname.includes(":") ? `[${hostname}]` : hostname, ...loopback]
    : [hostname.includes(":") ? `[${hostname}]` : hostname];
  return hosts.map((h) => `${h}:${port}`);
}

/** The origins a browser on this machine uses for the listen address. */
export function listenOrigins(hostname: string, port: number): string[] {
  return listenHosts(hostname, port).map((h) => `http://${h}`);
}
