/**
 * The route table: the only place that knows every path. Each request is matched here and
 * handed to a plain `(request, context) => Response` handler.
 */
import type { Config, ServerConfig } from "./config/schema.ts";
import type { Logger } from "./log.ts";
import type { Identity, Router } from "./router/router.ts";
import type { McpService } from "./mcp/service.ts";
import { handleStreamable } from "./mcp/streamable-http.ts";
import { openLegacyStream, postLegacyMessage } from "./mcp/legacy-sse.ts";
import { ErrorCode } from "./mcp/protocol.ts";
import { jsonResponse, rpcError } from "./mcp/http.ts";
import type { OAuthService } from "./oauth/service.ts";
import { oauthRoute } from "./oauth/routes.ts";

export interface RequestContext {
  /** The TCP peer's address. */
  peer: string;
}

export interface App {
  config: Config;
  router: Router;
  mcp: McpService;
  log: Logger;
  /** Origins allowed to call the MCP endpoints from a browser (the listen origins plus extras). */
  allowedOrigins: Set<string>;
  /** The authorization server, when login is configured. */
  oauth?: OAuthService;
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

/** The same 404 for every unknown path, so nothing is learned from probing. */
export function notFound(): Response {
  return jsonResponse(NOT_FOUND, 404);
}

/** Builds the request handler for `Deno.serve`. */
export function createHandler(app: App): (req: Request, ctx: RequestContext) => Promise<Response> {
  const servers = new Map(app.config.servers.map((s) => [s.name, s]));
  return async (req, ctx) => {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") {
      return req.method === "GET" ? health(app, ctx) : methodNotAllowed("GET");
    }
    if (app.oauth) {
      const answer = oauthRoute(app.oauth, req, path);
      if (answer) return answer;
    }
    const match = /^\/(mcp|sse)\/([^/]+)(\/messages)?$/.exec(path);
    if (!match) return notFound();
    const [, kind, name, messages] = match;
    const server = servers.get(name);
    if (!server || (kind === "mcp" && messages) || (kind === "sse" && !app.config.legacySse)) {
      return notFound();
    }
    const origin = req.headers.get("origin");
    if (origin !== null && !app.allowedOrigins.has(origin)) {
      return rpcError(
        403,
        null,
        ErrorCode.ConnectionClosed,
        `origin not allowed: ${origin.slice(0, 200)}`,
      );
    }
    if (req.method === "OPTIONS") return preflight(origin);
    const identity = await app.authenticate(req, server, ctx);
    if (identity instanceof Response) return withCors(identity, origin);
    let response: Response;
    if (kind === "mcp") response = await handleStreamable(app.mcp, req, server, identity);
    else if (messages) {
      response = req.method === "POST"
        ? await postLegacyMessage(app.mcp, req, server, identity)
        : methodNotAllowed("POST");
    } else {
      response = req.method === "GET"
        ? openLegacyStream(app.mcp, req, server, identity)
        : methodNotAllowed("GET");
    }
    return withCors(response, origin);
  };
}

function health(app: App, ctx: RequestContext): Response {
  const body: Record<string, unknown> = { status: "ok" };
  // Server names and child states are nobody else's business once a tunnel points here.
  if (isLoopbackAddress(ctx.peer)) body.servers = app.router.status();
  return jsonResponse(JSON.stringify(body), 200, { "cache-control": "no-store" });
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

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, "");
  return a === "::1" || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(a);
}

/** The origins a browser on this machine uses for the listen address. */
export function listenOrigins(hostname: string, port: number): string[] {
  const hosts = hostname === "localhost" || hostname.startsWith("127.") || hostname === "::1"
    ? ["127.0.0.1", "localhost", "[::1]"]
    : [hostname.includes(":") ? `[${hostname}]` : hostname];
  return hosts.map((h) => `http://${h}:${port}`);
}
