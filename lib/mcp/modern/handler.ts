/**
 * The sessionless lane of `/mcp/<name>` (MCP 2026-07-28): each POST is validated on its own,
 * routed to the child for (identity, server) like a 2025 session's requests, and answered in the
 * 2026 shape. The 2025-era lane (initialize, sessions, GET streams) is not involved.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http
 */
import type { ServerConfig } from "../../config/schema.ts";
import type { Identity, RoutedSession } from "../../router/router.ts";
import type { Mux } from "../../router/mux.ts";
import { type InitializeResult, UnavailableError } from "../../children/lifecycle.ts";
import { ErrorCode, isRecord, type JsonRpcId, STREAMABLE_VERSIONS } from "../../jsonrpc.ts";
import { acceptance, jsonResponse, type McpCall, readJsonBody, rpcError } from "../http.ts";
import type { McpService } from "../service.ts";
import { ModernCall } from "./call.ts";
import { MERGED_SERVER } from "../../config/merged-schema.ts";
import { serveMerged } from "./merged.ts";
import { listenMerged } from "./merged-listen.ts";
import { capabilityOf, ENVELOPE_KEYS, MRTR_METHODS, REMOVED_METHODS } from "./protocol.ts";
import { Exchange } from "./exchange.ts";
import { admit, askResources, honored, Listener } from "./listen.ts";
import { DEFAULT_INPUT_TIMEOUT_MS, Parking, type ResumeRefusal } from "./parking.ts";
import { discoverResult, type ResultShape } from "./translate.ts";
import { checkToolHeaders } from "./param-headers.ts";
import type { StateClaims } from "./state.ts";
import {
  type ModernNotification,
  type ModernRequest,
  reject,
  type Rejection,
  validate,
} from "./validate.ts";

/**
 * Calls in flight and open listen streams, by (person, client, JSON-RPC id), so a
 * `notifications/cancelled` finds them.
 */
const inFlight = new WeakMap<McpService, Map<string, { cancel(): void }>>();

/**
 * Serves one request of the sessionless lane; `body` is the parsed body when the 2025 lane
 * already read it. GET and DELETE are 405: the revision has no standalone stream or session
 * (streamable-http "Earlier Streamable HTTP Revisions").
 */
export async function handleModern(
  svc: McpService,
  call: McpCall,
  body?: { value: unknown },
): Promise<Response> {
  const { req, identity, note } = call;
  if (req.method !== "POST") {
    return rpcError(405, null, ErrorCode.TransportRefused, "method not allowed", {
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
  return await serve(svc, call, checked, read.value);
}

function rejection(r: Rejection): Response {
  return rpcError(r.status, r.id, r.code, r.message, r.data === undefined ? {} : { data: r.data });
}

/** Notification POSTs are accepted (202); a cancellation ends the call it names. */
function notification(svc: McpService, identity: Identity, n: ModernNotification): Response {
  if (n.method === "notifications/cancelled") {
    const requestId = n.params.requestId;
    if (typeof requestId === "string" || typeof requestId === "number") {
      inFlight.get(svc)?.get(callKey(identity, requestId))?.cancel();
    }
  }
  return new Response(null, { status: 202 });
}

function callKey(identity: Identity, id: JsonRpcId): string {
  return `${identity.key}\n${identity.clientId ?? ""}\n${typeof id}:${id}`;
}

async function serve(
  svc: McpService,
  call: McpCall,
  request: ModernRequest,
  body: unknown,
  rewrite?: Rewrite,
): Promise<Response> {
  const { req, server: config, identity } = call;
  const { id, method } = request;
  if (REMOVED_METHODS.has(method)) {
    return rpcError(404, id, ErrorCode.MethodNotFound, `method not found: ${method}`);
  }
  const merged = config.name === MERGED_SERVER;
  if (method === "subscriptions/listen") {
    const opened = merged
      ? await listenMerged(svc, identity, request, routed)
      : await listen(svc, config, identity, request);
    if (opened instanceof Response) return opened;
    track(svc, identity, id, opened, (done) => opened.onClose(done));
    return opened.response;
  }
  const retry = retryFields(request);
  if (retry) return retry;
  if (merged) {
    return await serveMerged(svc, identity, request, {
      routeAs: routed,
      shape: resultShape(config, identity),
      // A retry another instance owns is forwarded as sent (to `/mcp`), and routed there alike.
      serveAt: (server, routedRequest, rewrite) =>
        serve(svc, { ...call, server }, routedRequest, body, rewrite),
    });
  }
  const server = routed(config);
  const at = probe(server, identity);
  const site: Site = { svc, req, mux: svc.router.route(at).mux, probe: at };
  const state = request.params.requestState;
  if (typeof state === "string" && MRTR_METHODS.has(method)) {
    const opened = await parkingFor(svc).open(state, {
      identity,
      server: config.name,
      method,
      params: request.params,
    });
    if (typeof opened === "string") return stateRefused(id, opened);
    // The owner checks the parameter headers against its child's tool schemas.
    const elsewhere = await resumedElsewhere(svc, call, opened, id, body);
    if (elsewhere) return elsewhere;
    const refused = await paramHeaders(site, request);
    if (refused) return rejection(refused);
    const exchange = exchangeFor(site, identity, request);
    const resumed = parkingFor(svc).take(opened, exchange);
    if (typeof resumed === "string") exchange.refuse(stateRefused(id, resumed));
    else exchange.onGone(() => resumed.abandon());
    return exchange.response;
  }
  return await start(site, config, identity, request, server, rewrite);
}

/** Reshapes a child's result before it is answered (see `CallOptions.rewrite`). */
type Rewrite = (result: Record<string, unknown>) => void;

/** Where a sessionless request is served: the proxy, the HTTP request and the child's mux. */
interface Site {
  svc: McpService;
  req: Request;
  mux: Mux;
  /** (identity, server) as the router finds their child. */
  probe: RoutedSession;
}

/** The HTTP side of a request that goes to the child, findable by a cancellation. */
function exchangeFor(site: Site, identity: Identity, request: ModernRequest): Exchange {
  const { svc, req } = site;
  const sse = acceptance(req.headers.get("accept")).sse;
  const exchange = new Exchange(request, sse, svc.registry, () => req.signal);
  track(svc, identity, request.id, exchange, (done) => exchange.onDone(done));
  return exchange;
}

/**
 * The retry of a call another instance keeps waiting, answered there; when that instance is
 * gone the state is as expired as any whose call ended (basic/patterns/mrtr, "Error Handling").
 */
async function resumedElsewhere(
  svc: McpService,
  call: McpCall,
  claims: StateClaims,
  id: JsonRpcId,
  body: unknown,
): Promise<Response | null> {
  const instances = svc.instances;
  if (!instances || !call.forwardable || !claims.inst || claims.inst === instances.id) return null;
  call.note.instance = claims.inst;
  const target = { ...call.forwardable, body: JSON.stringify(body) };
  return await instances.forward(claims.inst, call.req, target) ?? stateRefused(id, "expired");
}

/**
 * Starts a new call at the child (after `server/discover`, the capability gate and the
 * `Mcp-Param-*` check). A ready child's InitializeResult is read as is; otherwise the child is
 * started within the limits. The request goes through the child's route (the server's filters).
 */
async function start(
  site: Site,
  config: ServerConfig,
  identity: Identity,
  request: ModernRequest,
  server: ServerConfig,
  rewrite?: Rewrite,
): Promise<Response> {
  const { svc, mux } = site;
  const { id, method } = request;
  let init = mux.supervisor.state === "ready"
    ? mux.initResult as Record<string, unknown> | null
    : null;
  if (!init) {
    try {
      init = await svc.router.initialize(site.probe, STREAMABLE_VERSIONS[0], STREAMABLE_VERSIONS);
    } catch (error) {
      return startFailure(error, id);
    }
  }
  const shape = resultShape(config, identity, init.serverInfo as Record<string, unknown>);
  if (method === "server/discover") {
    const result = discoverResult(init as unknown as InitializeResult, shape, true);
    return jsonResponse(JSON.stringify({ jsonrpc: "2.0", id, result }));
  }
  const needs = capabilityOf(method);
  if (needs && (init.capabilities as Record<string, unknown>)[needs] === undefined) {
    return rpcError(404, id, ErrorCode.MethodNotFound, `method not found: ${method}`);
  }
  const checked = paramHeaders(site, request);
  const refused = checked instanceof Promise ? await checked : checked;
  if (refused) return rejection(refused);
  const exchange = exchangeFor(site, identity, request);
  const parking = parkingFor(svc);
  const call: ModernCall = new ModernCall({
    request,
    server,
    identity,
    shape,
    rewrite,
    answerChild: (message) => mux.response(call, message),
    cancel: () =>
      mux.notification(call, {
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: id, reason: "the client closed the request" },
      }),
    park: (c) => parking.park(c, config.inputTimeoutMs ?? DEFAULT_INPUT_TIMEOUT_MS),
    unpark: (c) => parking.unpark(c),
  }, exchange);
  exchange.onGone(() => call.abandon());
  const message = { jsonrpc: "2.0", id, method, params: forwardedParams(request.params) };
  svc.router.route(call).request(message, call);
  return exchange.response;
}

/**
 * The server as sessionless requests are routed: they have no session to give a child of their
 * own, so a per-session server serves them with one child per person.
 */
function routed(config: ServerConfig): ServerConfig {
  return config.mode === "per-session" ? { ...config, mode: "per-user" } : config;
}

/**
 * Opens a `subscriptions/listen` stream on the child of (identity, server), subscribing the
 * child to the resources the filter names (basic/patterns/subscriptions).
 */
async function listen(
  svc: McpService,
  config: ServerConfig,
  identity: Identity,
  request: ModernRequest,
): Promise<Listener | Response> {
  const { id } = request;
  const admitted = admit(svc, id, request.params.notifications);
  if (admitted instanceof Response) return admitted;
  const { filter, listening } = admitted;
  const server = routed(config);
  const listenProbe = probe(server, identity);
  let init: Record<string, unknown>;
  try {
    init = await svc.router.initialize(listenProbe, STREAMABLE_VERSIONS[0], STREAMABLE_VERSIONS);
  } catch (error) {
    return startFailure(error, id);
  }
  const child = `${config.name}\n${svc.router.routeKey(listenProbe)}`;
  const wanted = honored(filter, init.capabilities as Record<string, unknown>);
  const uris = wanted.resourceSubscriptions ?? [];
  const resources = (method: string, list: string[], via: Listener) =>
    askResources(svc.router, via, method, list);
  const listener = new Listener({
    id,
    server,
    identity,
    filter: wanted,
    serverInfo: init.serverInfo as Record<string, unknown>,
    registry: svc.registry,
    onClose: (l) => {
      listening.open--;
      svc.router.detach(l).catch(() => {});
      resources("resources/unsubscribe", listening.resources.remove(child, uris), l);
    },
    // A new child knows none of the old one's subscriptions.
    onChildReady: (l, pid) =>
      resources("resources/subscribe", listening.resources.renew(child, pid), l),
  });
  listening.open++;
  if (Object.keys(wanted).length === 0) {
    listener.end(); // nothing the child can deliver
    return listener;
  }
  svc.router.attach(listener);
  resources("resources/subscribe", listening.resources.add(child, uris), listener);
  return listener;
}

/**
 * (identity, server) as the router needs it to find their child, for lookups that send the
 * child nothing of the client's.
 */
function probe(server: ServerConfig, identity: Identity): RoutedSession {
  return {
    id: "probe",
    identityKey: identity.key,
    capabilities: { sampling: false, elicitation: false, roots: false },
    logLevel: Number.POSITIVE_INFINITY,
    notify: () => {},
    server,
    identity,
  };
}

/** A `tools/call`'s `Mcp-Param-*` headers checked against the child's tool schemas. */
function paramHeaders(site: Site, request: ModernRequest) {
  // Only the tools the server's filters show: a hidden tool is unknown here too.
  return checkToolHeaders(site.mux.visibleTools, request, (h) => site.req.headers.get(h));
}

/** Keeps a call or stream findable by a `notifications/cancelled` naming its id, until it ends. */
function track(
  svc: McpService,
  identity: Identity,
  id: JsonRpcId,
  target: { cancel(): void },
  onEnd: (done: () => void) => void,
): void {
  let calls = inFlight.get(svc);
  if (!calls) inFlight.set(svc, calls = new Map());
  const key = callKey(identity, id);
  calls.set(key, target);
  onEnd(() => {
    if (calls.get(key) === target) calls.delete(key);
  });
}

/**
 * The retry fields of a multi round-trip request: `inputResponses` must be an object and
 * `requestState` a string (basic/patterns/mrtr, "Error Handling").
 */
function retryFields(request: ModernRequest): Response | null {
  const { inputResponses, requestState } = request.params;
  const bad = (what: string) =>
    rpcError(200, request.id, ErrorCode.InvalidParams, `invalid params: ${what}`);
  if (inputResponses !== undefined && !isRecord(inputResponses)) {
    return bad("inputResponses must be an object keyed by the input requests' keys");
  }
  if (requestState !== undefined && typeof requestState !== "string") {
    return bad("requestState must be the string the server sent");
  }
  return null;
}

const REFUSALS: Record<ResumeRefusal, string> = {
  invalid: "requestState is not valid (altered, truncated or not issued here)",
  expired: "requestState has expired; send the request again without it",
  principal: "requestState was issued to another user or client",
  request: "requestState belongs to another request",
  gone: "the request this requestState continues is finished or expired; send it again",
  busy: "requestState is not the latest round of its request, or that round is being answered",
};

/** A retry whose `requestState` is refused (basic/patterns/mrtr, "Security Considerations"). */
function stateRefused(id: JsonRpcId, why: ResumeRefusal): Response {
  return rpcError(200, id, ErrorCode.InvalidParams, `invalid params: ${REFUSALS[why]}`, {
    data: { requestState: why },
  });
}

/** The parked multi round-trip calls of a proxy (one registry per MCP service). */
const parkings = new WeakMap<McpService, Parking>();

/**
 * The proxy's parking, made on the lane's first use: it seals request states with the service's
 * `requestStateSecret` when it has one (else a random key per process), names this instance when
 * there are several, and is cleared when the service shuts down.
 */
function parkingFor(svc: McpService): Parking {
  const known = parkings.get(svc);
  if (known) return known;
  const parking = new Parking({ log: svc.log });
  if (svc.requestStateSecret) parking.useSecret(svc.requestStateSecret);
  parking.instance = svc.instances?.id;
  svc.atShutdown(() => parking.clear());
  parkings.set(svc, parking);
  return parking;
}

/**
 * The params a 2025-era child receives: the per-request protocol fields removed from `_meta`
 * (progress tokens and trace context stay).
 */
export function forwardedParams(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in params) {
    if (key === "inputResponses" || key === "requestState") continue;
    const value = params[key];
    if (key !== "_meta" || !isRecord(value)) {
      out[key] = value;
      continue;
    }
    let rest: Record<string, unknown> | null = null;
    for (const metaKey in value) {
      if (ENVELOPE.has(metaKey)) continue;
      (rest ??= {})[metaKey] = value[metaKey];
    }
    if (rest) out._meta = rest;
  }
  return out;
}

const ENVELOPE: ReadonlySet<string> = new Set(ENVELOPE_KEYS);

/**
 * Caching hints for this server's answers: "private" whenever an answer can differ per person
 * (a child per person, or login in front of a shared one) (server/utilities/caching).
 */
function resultShape(
  server: ServerConfig,
  identity: Identity,
  serverInfo: Record<string, unknown> = {},
): ResultShape {
  const personal = server.mode !== "shared" || identity.key !== "anonymous";
  return {
    serverInfo,
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
