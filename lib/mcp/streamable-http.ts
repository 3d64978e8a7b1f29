/**
 * The Streamable HTTP transport (revisions 2025-03-26, 2025-06-18, 2025-11-25) on Web-standard
 * Request/Response: POST carries messages, GET opens the standalone stream, DELETE ends a session.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 */
import {
  ErrorCode,
  isRecord,
  type JsonRpcId,
  META_VERSION_KEY,
  resultBody,
  STATELESS_ERA_VERSION,
  STREAMABLE_VERSIONS,
} from "../jsonrpc.ts";
import {
  acceptance,
  childError,
  jsonResponse,
  type JsonRpcPost,
  type McpCall,
  readJsonRpc,
  rpcError,
} from "./http.ts";
import { clientCapabilities, clientName, Session } from "./sessions.ts";
import { formatEvent, SSE_HEADERS } from "./sse.ts";
import { parseEventId } from "./replay.ts";
import type { McpService } from "./service.ts";
import { PostStream } from "./post-stream.ts";
import { serveModern, wantsModern } from "./modern/lane.ts";
import { MERGED_SERVER } from "../config/merged-schema.ts";
import { servedElsewhere } from "./owners.ts";

/** The transport's three methods over the shared MCP service. */
export class StreamableHttpTransport {
  constructor(private readonly svc: McpService) {}

  /** Handles one request to `/mcp/<name>`. */
  async handle(call: McpCall): Promise<Response> {
    const { req } = call;
    // A request naming a version the 2025-era revisions do not know takes the sessionless lane.
    if (wantsModern(req)) return await serveModern(this.svc, call);
    // A session another instance holds is served there.
    const elsewhere = await servedElsewhere(this.svc, call, req.headers.get("mcp-session-id"));
    if (elsewhere) return elsewhere;
    switch (req.method) {
      case "POST":
        return this.#post(call);
      case "GET":
        return this.#get(call);
      case "DELETE":
        return this.#delete(call);
      default:
        return rpcError(405, null, ErrorCode.TransportRefused, "method not allowed", {
          headers: { allow: "GET, POST, DELETE" },
        });
    }
  }

  async #post(call: McpCall): Promise<Response> {
    const { req } = call;
    const post = await readJsonRpc(req, this.svc.limits);
    if (post instanceof Response) return post;
    const mediaError = post.mediaError();
    if (mediaError) return mediaError;
    const headerVersion = req.headers.get("mcp-protocol-version");
    if (headerVersion !== null && !STREAMABLE_VERSIONS.includes(headerVersion as never)) {
      return unsupportedVersion(post.id, headerVersion);
    }
    const shapeError = post.shapeError();
    if (shapeError) return shapeError;
    const first = post.messages[0].message;
    noteCall(call, first);
    const era = statelessEraVersion(first);
    if (era) {
      // Per-request _meta without a version header, session or initialize: the sessionless lane.
      if (
        headerVersion === null && !req.headers.has("mcp-session-id") && !post.batch &&
        first.method !== "initialize"
      ) {
        return serveModern(this.svc, call, { value: post.body });
      }
      return unsupportedVersion(post.id, era);
    }
    if (post.messages.some((m) => m.message.method === "initialize")) {
      if (post.messages.length > 1) {
        return rpcError(
          400,
          null,
          ErrorCode.InvalidRequest,
          "initialize must not be part of a batch",
        );
      }
      return this.#initialize(call, first);
    }
    const found = this.#findSession(call, post.id);
    if (found instanceof Response) return found;
    return this.#deliver(call, found, post);
  }

  /** Hands the messages of a POST to the router; requests get a PostStream for their answers. */
  async #deliver(call: McpCall, session: Session, post: JsonRpcPost): Promise<Response> {
    if (post.batch && session.protocolVersion !== "2025-03-26") {
      return rpcError(
        400,
        null,
        ErrorCode.InvalidRequest,
        `JSON-RPC batches are not supported in protocol version ${session.protocolVersion}`,
      );
    }
    const route = this.svc.route(session);
    const requests = post.messages.filter((m) => m.kind === "request").map((m) => m.message);
    if (requests.length > 0 && !route.ready) {
      try {
        await route.prepare();
      } catch (error) {
        return childError(error, requests.length === 1 ? requests[0].id as JsonRpcId : null);
      }
    }
    for (const { kind, message } of post.messages) {
      if (kind === "notification") route.notification(message);
      else if (kind === "response") route.response(message);
    }
    if (requests.length === 0) return new Response(null, { status: 202 });

    const accept = acceptance(call.req.headers.get("accept"));
    const mode = accept.sse ? (accept.json ? "deferred" : "sse") : "json";
    const stream = new PostStream(this.svc, session, mode, requests.length, post.batch);
    if (requests.length === 1) route.request(requests[0], stream);
    else requests.forEach((m, index) => route.request(m, stream.part(index)));
    return stream.response;
  }

  async #initialize(
    { req, server, identity }: McpCall,
    message: Record<string, unknown>,
  ): Promise<Response> {
    const id = message.id as JsonRpcId;
    const params = message.params;
    if (
      !isRecord(params) || typeof params.protocolVersion !== "string" ||
      (params.capabilities !== undefined && !isRecord(params.capabilities))
    ) {
      return rpcError(
        400,
        id,
        ErrorCode.InvalidParams,
        "initialize needs protocolVersion and capabilities",
      );
    }
    const session = new Session(
      server,
      identity,
      "streamable",
      STREAMABLE_VERSIONS.includes(params.protocolVersion as never)
        ? params.protocolVersion
        : STREAMABLE_VERSIONS[0],
      clientCapabilities(params.capabilities),
      clientName(params.clientInfo),
      this.svc.replay,
      await this.svc.sessionId(),
    );
    if (server.name === MERGED_SERVER && !await this.svc.mergeSession(session)) {
      return rpcError(404, id, ErrorCode.SessionNotFound, "not found");
    }
    // Refuse before a child is started for a session that would not be kept.
    const refused = this.svc.sessions.refusal(identity.key);
    if (refused) return childError(refused, id);
    let result: Record<string, unknown>;
    try {
      result = await this.svc.initialize(
        session,
        params.protocolVersion,
        STREAMABLE_VERSIONS,
      );
    } catch (error) {
      return childError(error, id);
    }
    try {
      this.svc.open(session);
    } catch (error) {
      await this.svc.detach(session); // Others took the room meanwhile.
      return childError(error, id);
    }
    const body = resultBody(id, result);
    const headers = { "mcp-session-id": session.id };
    const accept = acceptance(req.headers.get("accept"));
    if (accept.sse && !accept.json) {
      return new Response(formatEvent(body), { headers: { ...SSE_HEADERS, ...headers } });
    }
    return jsonResponse(body, 200, headers);
  }

  /** GET: the standalone stream, or the resumption of a stream after `Last-Event-ID`. */
  #get(call: McpCall): Response {
    if (!acceptance(call.req.headers.get("accept")).sse) {
      return rpcError(406, null, ErrorCode.TransportRefused, "GET needs Accept: text/event-stream");
    }
    const found = this.#findSession(call);
    if (found instanceof Response) return found;
    const session = found;
    const writer = this.svc.stream(session);
    const resume = parseEventId(call.req.headers.get("last-event-id"));
    if (resume && resume.stream !== 0) {
      for (const event of session.events.after(resume.stream, resume.seq)) writer.write(event);
      const active = session.resumable.get(resume.stream);
      if (active) active.attach(writer);
      else session.addListener(writer);
    } else {
      session.addListener(writer, resume?.seq);
    }
    return new Response(writer.body, { headers: SSE_HEADERS });
  }

  async #delete(call: McpCall): Promise<Response> {
    const found = this.#findSession(call);
    if (found instanceof Response) return found;
    await this.svc.close(found, "client ended the session");
    return new Response(null, { status: 204 });
  }

  /**
   * The session named by Mcp-Session-Id, or the error response the transport requires, carrying
   * the id of the request being refused when there is one (JSON-RPC 2.0 §5).
   */
  #findSession(
    { req, server, identity }: McpCall,
    requestId: JsonRpcId | null = null,
  ): Session | Response {
    const id = req.headers.get("mcp-session-id");
    if (!id) {
      return rpcError(
        400,
        requestId,
        ErrorCode.TransportRefused,
        "Mcp-Session-Id header is required",
      );
    }
    const session = this.svc.sessions.get(id);
    // Another person's session, or another server's, is as unknown as a missing one.
    if (
      !session || session.transport !== "streamable" || session.server.name !== server.name ||
      !session.belongsTo(identity)
    ) {
      return rpcError(404, requestId, ErrorCode.SessionNotFound, "session not found");
    }
    session.lastActive = Date.now();
    return session;
  }
}

/** The method (and tool) of a POST's first message, for the access log. */
function noteCall({ note }: McpCall, first: Record<string, unknown>): void {
  if (typeof first.method === "string") note.rpc = first.method;
  if (
    first.method === "tools/call" && isRecord(first.params) && typeof first.params.name === "string"
  ) {
    note.tool = first.params.name.slice(0, 128);
  }
}

/** The 2026-07-28 revision's version, if a message declares it. */
function statelessEraVersion(message: Record<string, unknown>): string | null {
  const params = message.params;
  if (!isRecord(params) || !isRecord(params._meta)) return null;
  const v = params._meta[META_VERSION_KEY];
  return typeof v === "string" ? v : null;
}

function unsupportedVersion(id: JsonRpcId | null, requested: string): Response {
  const message = requested === STATELESS_ERA_VERSION
    ? `protocol version ${requested} is not supported yet; use one of the supported versions`
    : `unsupported protocol version: ${requested}`;
  return rpcError(400, id, ErrorCode.UnsupportedProtocolVersion, message, {
    data: { supported: [...STREAMABLE_VERSIONS], requested },
  });
}
