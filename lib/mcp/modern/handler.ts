/**
 * The sessionless lane of `/mcp/<name>` (MCP 2026-07-28): each POST is validated on its own,
 * routed to the child for (identity, server) like a 2025 session's requests, and answered in the
 * 2026 shape. The 2025-era lane (initialize, sessions, GET streams) is not involved.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http
 */
import type { ServerConfig } from "../../config/schema.ts";
import type { Identity } from "../../router/router.ts";
import type { RequestNote } from "../../edge/access-log.ts";
import { UnavailableError } from "../../children/supervisor.ts";
import type { InitializeResult } from "../../children/supervisor.ts";
import { ErrorCode, type JsonRpcId, LEGACY_VERSIONS, STREAMABLE_VERSIONS } from "../../jsonrpc.ts";
import { acceptance, jsonResponse, readJsonBody, rpcError } from "../http.ts";
import type { McpService } from "../service.ts";
import { ModernCall } from "./call.ts";
import { capabilityOf, ENVELOPE_KEYS, MODERN_VERSION, REMOVED_METHODS } from "./protocol.ts";
import { discoverResult, type ResultShape } from "./translate.ts";
import {
  type ModernNotification,
  type ModernRequest,
  reject,
  type Rejection,
  validate,
} from "./validate.ts";

/**
 * Whether a request's `MCP-Protocol-Version` header selects the sessionless lane: 2026-07-28,
 * or any version the 2025-era transports do not know on a request outside a 2025 session
 * (basic/versioning "Backward Compatibility"; a 2026 request's `Mcp-Session-Id` is ignored).
 */
export function wantsModern(req: Request): boolean {
  const version = req.headers.get("mcp-protocol-version");
  if (version === null || LEGACY_VERSIONS.includes(version as never)) return false;
  return version === MODERN_VERSION || !req.headers.has("mcp-session-id");
}

/** Calls in flight, by (person, client, JSON-RPC id), so a `notifications/cancelled` finds them. */
const inFlight = new WeakMap<McpService, Map<string, ModernCall>>();

/**
 * Serves one request of the sessionless lane; `body` is the parsed body when the 2025 lane
 * already read it. GET and DELETE are 405: the revision has no standalone stream or session
 * (streamable-http "Earlier Streamable HTTP Revisions").
 */
export async function handleModern(
  svc: McpService,
  req: Request,
  server: ServerConfig,
  identity: Identity,
  note: RequestNote = {},
  body?: { value: unknown },
): Promise<Response> {
  if (req.method !== "POST") {
    return rpcError(405, null, ErrorCode.ConnectionClosed, "method not allowed", {
      headers: { allow: "POST" },
    });
  }
  const read = body ?? await readJsonBody(
    req,
    svc.limits.maxMessageInBytes,
    svc.limits.bodyTimeoutMs,
  );
  if (read instanceof Response) return read;
  const checked = validate(read.value, (name) => req.headers.get(name));
  if (checked.kind === "rejection") return rejection(checked);
  if (checked.kind === "notification") return notification(svc, identity, checked);
  note.rpc = checked.method;
  if (checked.method === "tools/call" && typeof checked.params.name === "string") {
    note.tool = checked.params.name.slice(0, 128);
  }
  return await serve(svc, req, server, identity, checked);
}

function rejection(r: Rejection): Response {
  return rpcError(r.status, r.id, r.code, r.message, r.data === undefined ? {} : { data: r.data });
}

/** Notification POSTs are accepted (202); a cancellation ends the call it names. */
function notification(svc: McpService, identity: Identity, n: ModernNotification): Response {
  if (n.method === "notifications/cancelled") {
    const requestId = n.params.requestId;
    if (typeof requestId === "string" || typeof requestId === "number") {
      inFlight.get(svc)?.get(callKey(identity, requestId))?.abandon();
    }
  }
  return new Response(null, { status: 202 });
}

function callKey(identity: Identity, id: JsonRpcId): string {
  return `${identity.key}\n${identity.clientId ?? ""}\n${typeof id}:${id}`;
}

async function serve(
  svc: McpService,
  req: Request,
  config: ServerConfig,
  identity: Identity,
  request: ModernRequest,
): Promise<Response> {
  const { id, method } = request;
  if (REMOVED_METHODS.has(method) || method === "subscriptions/listen") {
    return rpcError(404, id, ErrorCode.MethodNotFound, `method not found: ${method}`);
  }
  // Sessionless requests have no session to give a child of their own: a per-session server
  // serves them with one child per person.
  const server: ServerConfig = config.mode === "per-session"
    ? { ...config, mode: "per-user" }
    : config;
  const shape = resultShape(config, identity);
  const call = new ModernCall({
    request,
    server,
    identity,
    shape,
    sse: acceptance(req.headers.get("accept")).sse,
    registry: svc.registry,
    answerChild: (message) => svc.router.response(call, message),
    cancel: () =>
      svc.router.notification(call, {
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: id, reason: "the client closed the request" },
      }),
  });
  let init: Record<string, unknown>;
  try {
    init = await svc.router.initialize(call, STREAMABLE_VERSIONS[0], STREAMABLE_VERSIONS);
  } catch (error) {
    return startFailure(error, id);
  }
  shape.serverInfo = init.serverInfo as Record<string, unknown>;
  if (method === "server/discover") {
    const result = discoverResult(init as unknown as InitializeResult, shape, false);
    return jsonResponse(JSON.stringify({ jsonrpc: "2.0", id, result }));
  }
  const needs = capabilityOf(method);
  if (needs && (init.capabilities as Record<string, unknown>)[needs] === undefined) {
    return rpcError(404, id, ErrorCode.MethodNotFound, `method not found: ${method}`);
  }
  return relay(svc, req, identity, call);
}

/** Sends the request to the child and waits for the call's response. */
function relay(svc: McpService, req: Request, identity: Identity, call: ModernCall) {
  const { request } = call.options;
  let calls = inFlight.get(svc);
  if (!calls) inFlight.set(svc, calls = new Map());
  const key = callKey(identity, request.id);
  calls.set(key, call);
  const forget = () => {
    if (calls.get(key) === call) calls.delete(key);
  };
  call.response.then(forget);
  req.signal.addEventListener("abort", () => call.abandon(), { once: true });
  svc.router.request(call, {
    jsonrpc: "2.0",
    id: request.id,
    method: request.method,
    params: forwardedParams(request.params),
  }, call);
  return call.response;
}

/**
 * The params a 2025-era child receives: the per-request protocol fields removed from `_meta`
 * (progress tokens and trace context stay).
 */
export function forwardedParams(params: Record<string, unknown>): Record<string, unknown> {
  const out = { ...params };
  const meta = params._meta;
  if (typeof meta !== "object" || meta === null) return out;
  const rest: Record<string, unknown> = { ...meta as Record<string, unknown> };
  for (const key of ENVELOPE_KEYS) delete rest[key];
  if (Object.keys(rest).length === 0) delete out._meta;
  else out._meta = rest;
  return out;
}

/**
 * Caching hints for this server's answers: "private" whenever an answer can differ per person
 * (a child per person, or login in front of a shared one) (server/utilities/caching).
 */
function resultShape(server: ServerConfig, identity: Identity): ResultShape {
  const personal = server.mode !== "shared" || identity.key !== "anonymous";
  return {
    serverInfo: {},
    ttlMs: server.cacheTtlMs ?? 0,
    cacheScope: personal ? "private" : "public",
  };
}

/** A child that could not start: 503 with Retry-After when it will be retried, else in-band. */
function startFailure(error: unknown, id: JsonRpcId): Response {
  if (error instanceof UnavailableError) {
    return rpcError(503, id, ErrorCode.InternalError, error.message, {
      headers: { "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) },
    });
  }
  const r = reject(200, id, ErrorCode.InternalError, (error as Error).message);
  return rejection(r);
}
