/**
 * The legacy HTTP+SSE transport (revision 2024-11-05): `GET /sse/<name>` opens a stream whose
 * first event names the message endpoint; `POST …/messages?sessionId=` carries client messages
 * and answers 202, with every reply sent on the stream. Each stream is its own session.
 */
import type { Identity } from "../router/router.ts";
import type { ServerConfig } from "../config/schema.ts";
import type { Reply } from "../router/downstream.ts";
import {
  classify,
  errorBody,
  ErrorCode,
  isRecord,
  type JsonRpcId,
  LEGACY_VERSIONS,
  NOT_JSON,
  parseJson,
  requestId,
  resultBody,
} from "../jsonrpc.ts";
import { bodyError, mediaType, readBody, rpcError } from "./http.ts";
import { Session } from "./sessions.ts";
import { formatEvent, SSE_HEADERS } from "./sse.ts";
import type { McpService } from "./service.ts";
import { childError, clientCapabilities, clientName } from "./streamable-http.ts";

const initialized = new WeakSet<Session>();
const replies = new WeakMap<Session, Reply>();

/** `GET /sse/<name>`: opens a legacy stream and its session. */
export function openLegacyStream(
  svc: McpService,
  req: Request,
  server: ServerConfig,
  identity: Identity,
): Response {
  const session = new Session(
    server,
    identity,
    "legacy-sse",
    LEGACY_VERSIONS[0],
    clientCapabilities({}),
    "unknown",
  );
  const refused = svc.sessions.refusal(identity.key);
  if (refused) return childError(refused, null);
  const writer = svc.stream(session);
  session.legacy = writer;
  svc.sessions.add(session);
  writer.onClose(() => svc.close(session, "stream closed").catch(() => {}));
  const path = new URL(req.url).pathname;
  writer.write(formatEvent(`${path}/messages?sessionId=${session.id}`, undefined, "endpoint"));
  return new Response(writer.body, { headers: SSE_HEADERS });
}

/** `POST /sse/<name>/messages?sessionId=`: accepts one message (or batch) for a legacy session. */
export async function postLegacyMessage(
  svc: McpService,
  req: Request,
  server: ServerConfig,
  identity: Identity,
): Promise<Response> {
  // The body is read first so that every error below can echo the request's id.
  let text: string;
  try {
    text = await readBody(req, svc.limits.maxMessageInBytes, svc.limits.bodyTimeoutMs);
  } catch (error) {
    return bodyError(error);
  }
  const body = parseJson(text);
  const rid = requestId(body);
  const sid = new URL(req.url).searchParams.get("sessionId") ?? "";
  const session = svc.sessions.get(sid);
  // sessionId only routes; the caller must still be the person who opened the stream.
  if (
    !session || session.transport !== "legacy-sse" || session.server.name !== server.name ||
    !session.belongsTo(identity) || !session.legacy || session.legacy.closed
  ) {
    return rpcError(404, rid, ErrorCode.SessionNotFound, "session not found");
  }
  if (mediaType(req.headers.get("content-type")) !== "application/json") {
    return rpcError(415, rid, ErrorCode.InvalidRequest, "Content-Type must be application/json");
  }
  if (body === NOT_JSON) {
    return rpcError(400, null, ErrorCode.ParseError, "parse error: the body is not valid JSON");
  }
  const messages = Array.isArray(body) ? body : [body];
  if (messages.length === 0 || messages.some((m) => classify(m) === "invalid")) {
    return rpcError(400, rid, ErrorCode.InvalidRequest, "invalid JSON-RPC 2.0 message");
  }
  session.lastActive = Date.now();
  for (const message of messages as Record<string, unknown>[]) {
    handle(svc, session, message).catch((error) => {
      svc.log.error("legacy message failed", {
        session: session.id.slice(0, 8),
        error: String(error),
      });
    });
  }
  return new Response("Accepted", { status: 202, headers: { "content-type": "text/plain" } });
}

async function handle(svc: McpService, session: Session, message: Record<string, unknown>) {
  const reply = replyFor(session);
  const kind = classify(message);
  const id = message.id as JsonRpcId;
  if (kind === "request" && message.method === "initialize") {
    if (initialized.has(session)) {
      reply.end(errorBody(id, ErrorCode.InvalidRequest, "the session is already initialized"));
      return;
    }
    const params = isRecord(message.params) ? message.params : {};
    try {
      const result = await svc.router.initialize(session, params.protocolVersion, LEGACY_VERSIONS);
      session.protocolVersion = result.protocolVersion as string;
      session.capabilities = clientCapabilities(params.capabilities);
      session.clientName = clientName(params.clientInfo);
      initialized.add(session);
      svc.open(session);
      reply.end(resultBody(id, result));
    } catch (error) {
      reply.end(errorBody(id, ErrorCode.InternalError, (error as Error).message));
    }
    return;
  }
  if (!initialized.has(session)) {
    if (kind === "request") {
      reply.end(errorBody(id, ErrorCode.InvalidRequest, "send initialize first"));
    }
    return;
  }
  const route = svc.router.route(session);
  if (kind === "notification") return route.notification(message);
  if (kind === "response") return route.response(message);
  if (!route.ready) {
    try {
      await route.prepare();
    } catch (error) {
      reply.end(errorBody(id, ErrorCode.InternalError, (error as Error).message));
      return;
    }
  }
  route.request(message, reply);
}

/** Every reply of a legacy session goes to its one stream as `event: message`. */
function replyFor(session: Session): Reply {
  let reply = replies.get(session);
  if (!reply) {
    const send = (text: string) => session.legacy?.write(formatEvent(text, undefined, "message"));
    reply = { streaming: true, send, end: send };
    replies.set(session, reply);
  }
  return reply;
}
