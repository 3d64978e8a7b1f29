/**
 * The Streamable HTTP transport (revisions 2025-03-26, 2025-06-18, 2025-11-25) on Web-standard
 * Request/Response: POST carries messages, GET opens the standalone stream, DELETE ends a session.
 */
import type { Identity } from "../router/router.ts";
import type { ServerConfig } from "../config/schema.ts";
import type { Reply } from "../router/downstream.ts";
import { UnavailableError } from "../children/supervisor.ts";
import {
  classify,
  ErrorCode,
  isRecord,
  isValidId,
  type JsonRpcId,
  META_VERSION_KEY,
  NOT_JSON,
  parseJson,
  requestId,
  resultBody,
  STATELESS_ERA_VERSION,
  STREAMABLE_VERSIONS,
} from "../jsonrpc.ts";
import { acceptance, bodyError, jsonResponse, mediaType, readBody, rpcError } from "./http.ts";
import { type ClientCapabilities, Session } from "./sessions.ts";
import { formatEvent, SSE_HEADERS, type SseWriter, streamWhenLong } from "./sse.ts";
import { parseEventId } from "./replay.ts";
import type { McpService } from "./service.ts";
import type { RequestNote } from "../edge/access-log.ts";
import { handleModern, wantsModern } from "./modern/handler.ts";

/** The reconnection delay advertised to clients in the priming event. */
export const SSE_RETRY_MS = 2000;

/** Handles one request to `/mcp/<name>`. */
export function handleStreamable(
  svc: McpService,
  req: Request,
  server: ServerConfig,
  identity: Identity,
  note: RequestNote = {},
): Promise<Response> | Response {
  // A request naming a version the 2025-era revisions do not know takes the sessionless lane.
  if (wantsModern(req)) return handleModern(svc, req, server, identity, note);
  switch (req.method) {
    case "POST":
      return post(svc, req, server, identity, note);
    case "GET":
      return get(svc, req, server, identity);
    case "DELETE":
      return del(svc, req, server, identity);
    default:
      return rpcError(405, null, ErrorCode.ConnectionClosed, "method not allowed", {
        headers: { allow: "GET, POST, DELETE" },
      });
  }
}

async function post(
  svc: McpService,
  req: Request,
  server: ServerConfig,
  identity: Identity,
  note: RequestNote,
) {
  // The body is read first so that every error below can echo the request's id.
  let text: string;
  try {
    text = await readBody(req, svc.limits.maxMessageInBytes, svc.limits.bodyTimeoutMs);
  } catch (error) {
    return bodyError(error);
  }
  const body = parseJson(text);
  const id = requestId(body);
  if (mediaType(req.headers.get("content-type")) !== "application/json") {
    return rpcError(415, id, ErrorCode.InvalidRequest, "Content-Type must be application/json");
  }
  const headerVersion = req.headers.get("mcp-protocol-version");
  if (headerVersion !== null && !STREAMABLE_VERSIONS.includes(headerVersion as never)) {
    return unsupportedVersion(id, headerVersion);
  }
  if (body === NOT_JSON) {
    return rpcError(400, null, ErrorCode.ParseError, "parse error: the body is not valid JSON");
  }
  const messages = Array.isArray(body) ? body : [body];
  if (messages.length === 0) return rpcError(400, null, ErrorCode.InvalidRequest, "empty batch");
  for (const message of messages) {
    if (classify(message) === "invalid") {
      const bad = isRecord(message) && isValidId(message.id) ? message.id : null;
      return rpcError(400, bad, ErrorCode.InvalidRequest, "invalid JSON-RPC 2.0 message");
    }
  }
  const first = messages[0] as Record<string, unknown>;
  if (typeof first.method === "string") note.rpc = first.method;
  if (
    first.method === "tools/call" && isRecord(first.params) && typeof first.params.name === "string"
  ) {
    note.tool = first.params.name.slice(0, 128);
  }
  const era = statelessEraVersion(first);
  if (era) {
    // Per-request _meta without a version header, session or initialize: the sessionless lane.
    if (
      headerVersion === null && !req.headers.has("mcp-session-id") && !Array.isArray(body) &&
      first.method !== "initialize"
    ) {
      return handleModern(svc, req, server, identity, note, { value: body });
    }
    return unsupportedVersion(id, era);
  }

  if (messages.some((m) => (m as Record<string, unknown>).method === "initialize")) {
    if (messages.length > 1) {
      return rpcError(
        400,
        null,
        ErrorCode.InvalidRequest,
        "initialize must not be part of a batch",
      );
    }
    return initialize(svc, req, server, identity, first);
  }

  const found = findSession(svc, req, server, identity, id);
  if (found instanceof Response) return found;
  const session = found;
  if (Array.isArray(body) && session.protocolVersion !== "2025-03-26") {
    return rpcError(
      400,
      null,
      ErrorCode.InvalidRequest,
      `JSON-RPC batches are not supported in protocol version ${session.protocolVersion}`,
    );
  }

  const requests: Record<string, unknown>[] = [];
  for (const m of messages as Record<string, unknown>[]) {
    if (classify(m) === "request") requests.push(m);
  }
  const route = svc.router.route(session);
  if (requests.length > 0 && !route.ready) {
    try {
      await route.prepare();
    } catch (error) {
      return childError(error, requests.length === 1 ? requests[0].id as JsonRpcId : null);
    }
  }
  for (const m of messages as Record<string, unknown>[]) {
    const kind = classify(m);
    if (kind === "notification") route.notification(m);
    else if (kind === "response") route.response(m);
  }
  if (requests.length === 0) return new Response(null, { status: 202 });

  const accept = acceptance(req.headers.get("accept"));
  const mode = accept.sse ? (accept.json ? "deferred" : "sse") : "json";
  const stream = new PostStream(svc, session, mode, requests.length, Array.isArray(body));
  if (requests.length === 1) route.request(requests[0], stream);
  else requests.forEach((m, index) => route.request(m, stream.part(index)));
  return stream.response;
}

async function initialize(
  svc: McpService,
  req: Request,
  server: ServerConfig,
  identity: Identity,
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
    svc.replay,
  );
  // Refuse before a child is started for a session that would not be kept.
  const refused = svc.sessions.refusal(identity.key);
  if (refused) return childError(refused, id);
  let result: Record<string, unknown>;
  try {
    result = await svc.router.initialize(session, params.protocolVersion, STREAMABLE_VERSIONS);
  } catch (error) {
    return childError(error, id);
  }
  try {
    svc.open(session);
  } catch (error) {
    await svc.router.detach(session); // Others took the room meanwhile.
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

function get(svc: McpService, req: Request, server: ServerConfig, identity: Identity): Response {
  if (!acceptance(req.headers.get("accept")).sse) {
    return rpcError(406, null, ErrorCode.ConnectionClosed, "GET needs Accept: text/event-stream");
  }
  const found = findSession(svc, req, server, identity);
  if (found instanceof Response) return found;
  const session = found;
  session.lastActive = Date.now();
  const writer = svc.stream(session);
  const resume = parseEventId(req.headers.get("last-event-id"));
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

async function del(svc: McpService, req: Request, server: ServerConfig, identity: Identity) {
  const found = findSession(svc, req, server, identity);
  if (found instanceof Response) return found;
  await svc.close(found, "client ended the session");
  return new Response(null, { status: 204 });
}

/**
 * The session named by Mcp-Session-Id, or the error response the transport requires, carrying
 * the id of the request being refused when there is one (JSON-RPC 2.0 §5).
 */
function findSession(
  svc: McpService,
  req: Request,
  server: ServerConfig,
  identity: Identity,
  requestId: JsonRpcId | null = null,
): Session | Response {
  const id = req.headers.get("mcp-session-id");
  if (!id) {
    return rpcError(
      400,
      requestId,
      ErrorCode.ConnectionClosed,
      "Mcp-Session-Id header is required",
    );
  }
  const session = svc.sessions.get(id);
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

/** Maps a child start-up failure to the response the client sees. */
export function childError(error: unknown, id: JsonRpcId | null): Response {
  if (error instanceof UnavailableError) {
    return rpcError(503, id, ErrorCode.InternalError, error.message, {
      headers: { "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) },
    });
  }
  return rpcError(200, id, ErrorCode.InternalError, (error as Error).message);
}

export function clientCapabilities(capabilities: unknown): ClientCapabilities {
  const caps = isRecord(capabilities) ? capabilities : {};
  return {
    sampling: isRecord(caps.sampling),
    elicitation: isRecord(caps.elicitation),
    roots: isRecord(caps.roots),
  };
}

export function clientName(info: unknown): string {
  return isRecord(info) && typeof info.name === "string" ? info.name.slice(0, 100) : "unknown";
}

/**
 * The HTTP response to one POST. It answers with JSON when the final message comes first,
 * and switches to an SSE stream as soon as the child sends anything else for the request,
 * or when the request runs longer than STREAM_AFTER_MS (so tunnels see bytes and keep-alives).
 */
export class PostStream implements Reply {
  readonly response: Promise<Response>;
  readonly streaming: boolean;
  #resolve!: (response: Response) => void;
  #resolved = false;
  #remaining: number;
  #parts: string[] = [];
  #writer: SseWriter | null = null;
  #streamId = 0;
  #seq = 0;
  /** Whether the last event was handed to a live connection. */
  #sent = false;
  #cancelSwitch: () => void = () => {};

  constructor(
    private readonly svc: McpService,
    private readonly session: Session,
    mode: "json" | "sse" | "deferred",
    count: number,
    private readonly batch: boolean,
  ) {
    this.response = new Promise((resolve) => this.#resolve = resolve);
    this.#remaining = count;
    this.streaming = mode !== "json";
    if (mode === "sse") this.openSse();
    else if (mode === "deferred") this.#cancelSwitch = streamWhenLong(() => this.openSse());
  }

  /** A Reply for one request of a batch. */
  part(_index: number): Reply {
    return { streaming: this.streaming, send: (t) => this.send(t), end: (t) => this.end(t) };
  }

  send(text: string): void {
    if (!this.streaming || this.#remaining === 0) return;
    if (!this.#writer && !this.#resolved) this.openSse();
    this.#emit(text);
  }

  end(text: string): void {
    if (this.#remaining === 0) return;
    this.#remaining--;
    if (this.#streamId !== 0) {
      this.#emit(text);
      if (this.#remaining === 0) this.#finish();
      return;
    }
    this.#parts.push(text);
    if (this.#remaining > 0) return;
    this.#cancelSwitch();
    const body = this.batch ? `[${this.#parts.join(",")}]` : this.#parts[0];
    this.#resolved = true;
    this.#resolve(jsonResponse(body));
  }

  /** Switches to an SSE response (first message, or the request ran long). */
  openSse(): void {
    if (this.#streamId !== 0 || this.#resolved) return;
    this.#cancelSwitch();
    this.#streamId = this.session.nextStreamId();
    const writer = this.svc.stream(this.session);
    this.#writer = writer;
    this.#resolved = true;
    this.#resolve(new Response(writer.body, { headers: SSE_HEADERS }));
    this.session.resumable.set(this.#streamId, this);
    if (this.session.protocolVersion >= "2025-11-25") {
      // The priming event: an id with empty data, so the client can resume with Last-Event-ID,
      // and how long to wait before reconnecting if the stream drops.
      writer.write(`id: ${this.#streamId}_0\nretry: ${SSE_RETRY_MS}\ndata: \n\n`);
    }
    const parts = this.#parts;
    this.#parts = [];
    for (const part of parts) this.#emit(part);
    if (this.#remaining === 0) this.#finish();
  }

  /** Continues the stream on a new connection after the client resumed it. */
  attach(writer: SseWriter): void {
    this.#writer?.close();
    this.#writer = writer;
  }

  #emit(text: string): void {
    const seq = ++this.#seq;
    const event = formatEvent(text, `${this.#streamId}_${seq}`);
    this.session.events.push(this.#streamId, seq, event);
    this.#sent = this.#writer?.write(event) ?? false;
  }

  #finish(): void {
    this.session.resumable.delete(this.#streamId);
    // Once the final answer went out on a live connection, nobody will resume this stream.
    if (this.#sent) this.session.events.dropStream(this.#streamId);
    this.#writer?.close();
  }
}
