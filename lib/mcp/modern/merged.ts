/**
 * The sessionless lane (MCP 2026-07-28) of the merged endpoint `/mcp`: `server/discover` and the
 * lists are answered from every server's child, merged as for a 2025 session; a call, get, read
 * or completion is routed to the one server its name or URI belongs to and served there by the
 * single-server lane, so its progress, cancellation and multi round-trip input requests are that
 * lane's (the `requestState` names the server the request was routed to, and the retry, named as
 * the client knows it, is routed the same way).
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http
 */
import type { ServerConfig } from "../../config/schema.ts";
import type { Identity } from "../../router/router.ts";
import { errorBody, ErrorCode, isRecord } from "../../jsonrpc.ts";
import { jsonResponse, rpcError } from "../http.ts";
import type { McpService } from "../service.ts";
import { MergedSession } from "../merged/session.ts";
import { LIST_SHAPES, type ListMethod } from "../merged/union.ts";
import { discoverResult, modernError, type ResultShape, stamp, statusOf } from "./translate.ts";
import type { ModernRequest } from "./validate.ts";

let next = 1;

/**
 * Serves a request routed to one server (the single-server lane, from its start); `rewrite`
 * reshapes the child's result as the endpoint's clients know it (a read's URIs).
 */
export type ServeAt = (
  server: ServerConfig,
  request: ModernRequest,
  rewrite?: (result: Record<string, unknown>) => void,
) => Promise<Response>;

/**
 * Serves one sessionless request on `/mcp`: `routeAs` is how the single-server lane routes a
 * server (a per-session one per person), `shape` the caching hints of the endpoint's answers.
 */
export async function serveMerged(
  svc: McpService,
  identity: Identity,
  request: ModernRequest,
  options: { routeAs: (s: ServerConfig) => ServerConfig; shape: ResultShape; serveAt: ServeAt },
): Promise<Response> {
  const host = svc.merged;
  const { id, method } = request;
  if (!host) return rpcError(404, id, ErrorCode.MethodNotFound, `method not found: ${method}`);
  const session = await MergedSession.open(host, {
    id: `merged-${next++}`,
    identity,
    capabilities: { sampling: false, elicitation: false, roots: false },
    logLevel: Number.POSITIVE_INFINITY,
    notify: () => {},
  }, options.routeAs);
  try {
    let init: Record<string, unknown>;
    try {
      init = await session.initialize(undefined);
    } catch (error) {
      return rpcError(200, id, ErrorCode.InternalError, (error as Error).message);
    }
    const shape = { ...options.shape, serverInfo: init.serverInfo as Record<string, unknown> };
    if (method === "server/discover") {
      const result = discoverResult(init as never, shape, false);
      return answer(id, result);
    }
    if (method in LIST_SHAPES) {
      const list = method as ListMethod;
      const items = await session.catalog.list(list);
      return answer(id, stamp({ [LIST_SHAPES[list].field]: items }, method, shape));
    }
    return await routeOne(session, request, options.serveAt);
  } finally {
    await session.detach();
  }
}

/** Routes a request naming a tool, prompt or resource to its server, renamed as the child knows. */
async function routeOne(
  session: MergedSession,
  request: ModernRequest,
  serveAt: ServeAt,
): Promise<Response> {
  const { id, method, params } = request;
  const target = await session.catalog.target({ jsonrpc: "2.0", id, method, params });
  if (typeof target === "string") {
    const error = JSON.parse(target).error as Record<string, unknown>;
    const modern = modernError(method, error, params);
    return jsonResponse(
      errorBody(id, modern.code as number, modern.message as string, modern.data),
      statusOf(modern.code, method),
    );
  }
  const original = session.configOf(target.part.name);
  const routedParams = isRecord(target.message.params) ? target.message.params : params;
  return await serveAt(original, { ...request, params: routedParams }, target.rewrite);
}

function answer(id: unknown, result: Record<string, unknown>): Response {
  return jsonResponse(JSON.stringify({ jsonrpc: "2.0", id, result }));
}
