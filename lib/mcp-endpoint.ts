/**
 * The MCP endpoints' front door: the Origin check (MCP 2025-11-25, Transports § "Security
 * Warning"), CORS preflight, the failed-authentication bucket, authentication, and dispatch to
 * the transport the path names.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#security-warning
 */
import type { Config, ServerConfig } from "./config/schema.ts";
import type { Identity } from "./router/router.ts";
import type { Edge } from "./edge/edge.ts";
import type { RequestNote } from "./edge/access-log.ts";
import { ErrorCode } from "./jsonrpc.ts";
import type { McpService } from "./mcp/service.ts";
import { jsonResponse, type McpCall, rpcError } from "./mcp/http.ts";
import { StreamableHttpTransport } from "./mcp/streamable-http.ts";
import { LegacySseTransport } from "./mcp/legacy-sse.ts";
import { notFound, type Route, type RouteKind, tooMany } from "./routes.ts";
import { MERGED_SERVER } from "./config/merged-schema.ts";
import { mergedServerConfig } from "./mcp/merged/server-config.ts";

export interface RequestContext {
  /** The TCP peer's address. */
  peer: string;
  /** The client's address: the peer, or what a trusted proxy says. Set by the edge. */
  ip: string;
  /** A caller on this machine (a loopback peer that is not a trusted proxy). */
  local: boolean;
  /** What handlers learned, for the access log. */
  note: RequestNote;
  /** The route class, once matched (for the access log and the metrics). */
  route?: RouteKind;
  /** Another instance passed this request on (its edge already checked it). */
  forwarded?: boolean;
}

/** What the MCP endpoints need of the application. */
export interface McpEndpointApp {
  config: Config;
  mcp: McpService;
  edge: Edge;
  /** Origins allowed to call the MCP endpoints from a browser (the listen origins plus extras). */
  allowedOrigins: Set<string>;
  /** Resolves who is calling an MCP endpoint, or the response that refuses them. */
  authenticate(
    req: Request,
    server: ServerConfig,
    ctx: RequestContext,
  ): Promise<Identity | Response> | Identity | Response;
}

const CORS_ALLOW_HEADERS =
  "authorization, content-type, mcp-protocol-version, mcp-session-id, last-event-id";
const CORS_EXPOSE_HEADERS = "mcp-session-id, www-authenticate, mcp-protocol-version";

/** `/mcp/<name>` (Streamable HTTP) and `/sse/<name>[/messages]` (legacy HTTP+SSE). */
export class McpEndpoint {
  readonly #servers: Map<string, ServerConfig>;
  readonly #streamable: StreamableHttpTransport;
  readonly #legacy: LegacySseTransport;

  constructor(private readonly app: McpEndpointApp) {
    this.#servers = new Map(app.config.servers.map((s) => [s.name, s]));
    // `/mcp`, when served; the name is outside the server-name alphabet, so `/mcp/<name>` never
    // reaches it.
    if (app.config.merged?.enabled) this.#servers.set(MERGED_SERVER, mergedServerConfig());
    this.#streamable = new StreamableHttpTransport(app.mcp);
    this.#legacy = new LegacySseTransport(app.mcp);
  }

  /** Serves one request routed to an MCP endpoint. */
  async serve(req: Request, ctx: RequestContext, route: Route): Promise<Response> {
    if (route.kind !== "mcp" && route.kind !== "sse") return notFound();
    const server = this.#servers.get(route.server);
    if (
      !server || (route.kind === "mcp" && route.messages) ||
      (route.server === MERGED_SERVER && (route.kind !== "mcp" || route.path !== "/mcp")) ||
      (route.kind === "sse" && !this.app.config.legacySse)
    ) {
      return notFound();
    }
    ctx.note.server = server.name;
    const origin = req.headers.get("origin");
    if (origin !== null && !ctx.forwarded && !this.app.allowedOrigins.has(origin)) {
      return rpcError(
        403,
        null,
        ErrorCode.TransportRefused,
        `origin not allowed: ${origin.slice(0, 200)}`,
      );
    }
    if (req.method === "OPTIONS") return preflight(origin);
    const identity = await this.#authenticate(req, server, ctx);
    if (identity instanceof Response) {
      // A server this person may not use answers exactly as an unknown server: no CORS either.
      return identity.status === 404 ? identity : withCors(identity, origin);
    }
    const call: McpCall = { req, server, identity, note: ctx.note };
    // Only another instance is ever handed the request (lib/mcp/owners.ts).
    if (!ctx.forwarded && this.app.mcp.instances) {
      call.forwardable = { path: route.path + new URL(req.url).search, clientIp: ctx.ip };
    }
    return withCors(await this.#dispatch(call, route.kind, route.messages), origin);
  }

  /** Authenticates the caller; guessing tokens costs a token from the failed-auth bucket. */
  async #authenticate(
    req: Request,
    server: ServerConfig,
    ctx: RequestContext,
  ): Promise<Identity | Response> {
    const failedAuth = this.app.edge.limits.failedAuth;
    const tried = req.headers.has("authorization");
    if (tried) {
      // An empty bucket refuses the caller.
      const verdict = failedAuth.check(ctx.ip);
      if (!verdict.ok) return tooMany(verdict.retryAfterS);
    }
    const identity = await this.app.authenticate(req, server, ctx);
    if (identity instanceof Response) {
      if (tried && identity.status === 401) failedAuth.take(ctx.ip);
      return identity;
    }
    ctx.note.user_id = identity.userId;
    ctx.note.login = identity.login;
    ctx.note.client_id = identity.clientId;
    return identity;
  }

  async #dispatch(call: McpCall, kind: "mcp" | "sse", messages: boolean): Promise<Response> {
    if (kind === "mcp") return await this.#streamable.handle(call);
    if (messages) {
      return call.req.method === "POST" ? await this.#legacy.post(call) : methodNotAllowed("POST");
    }
    return call.req.method === "GET" ? this.#legacy.open(call) : methodNotAllowed("GET");
  }
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
