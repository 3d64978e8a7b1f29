/**
 * The legacy HTTP+SSE transport (revision 2024-11-05): `GET /sse/<name>` opens a stream whose
 * first event names the message endpoint; `POST …/messages?sessionId=` carries client messages
 * and answers 202, with every reply sent on the stream. Each stream is its own session.
 * https://modelcontextprotocol.io/specification/2024-11-05/basic/transports#http-with-sse
 */
import {
  errorBody,
  ErrorCode,
  isRecord,
  type JsonRpcId,
  LEGACY_VERSIONS,
  resultBody,
} from "../jsonrpc.ts";
import { childError, type Classified, type McpCall, readJsonRpc, rpcError } from "./http.ts";
import { clientCapabilities, clientName, LegacyStream, Session } from "./sessions.ts";
import { formatEvent, SSE_HEADERS } from "./sse.ts";
import type { McpService } from "./service.ts";
import { servedElsewhere } from "./owners.ts";

/** The legacy transport's two endpoints over the shared MCP service. */
export class LegacySseTransport {
  constructor(private readonly svc: McpService) {}

  /** `GET /sse/<name>`: opens a legacy stream and its session. */
  async open({ req, server, identity }: McpCall): Promise<Response> {
    const session = new Session(
      server,
      identity,
      "legacy-sse",
      LEGACY_VERSIONS[0],
      clientCapabilities({}),
      "unknown",
      null,
      await this.svc.sessionId(),
    );
    const refused = this.svc.sessions.refusal(identity.key);
    if (refused) return childError(refused, null);
    const writer = this.svc.stream(session);
    session.legacy = new LegacyStream(writer);
    this.svc.sessions.add(session);
    writer.onClose(() => this.svc.close(session, "stream closed").catch(() => {}));
    const path = new URL(req.url).pathname;
    writer.write(formatEvent(`${path}/messages?sessionId=${session.id}`, undefined, "endpoint"));
    return new Response(writer.body, { headers: SSE_HEADERS });
  }

  /** `POST /sse/<name>/messages?sessionId=`: accepts one message (or batch) for a session. */
  async post(call: McpCall): Promise<Response> {
    const { req, server, identity } = call;
    const sid = new URL(req.url).searchParams.get("sessionId") ?? "";
    // A stream another instance holds takes its messages there.
    const elsewhere = await servedElsewhere(this.svc, call, sid);
    if (elsewhere) return elsewhere;
    const post = await readJsonRpc(req, this.svc.limits);
    if (post instanceof Response) return post;
    const session = this.svc.sessions.get(sid);
    // sessionId only routes; the caller must still be the person who opened the stream.
    if (
      !session || session.transport !== "legacy-sse" || session.server.name !== server.name ||
      !session.belongsTo(identity) || !session.legacy || session.legacy.writer.closed
    ) {
      return rpcError(404, post.id, ErrorCode.SessionNotFound, "session not found");
    }
    const refused = post.mediaError() ?? post.shapeError();
    if (refused) return refused;
    session.lastActive = Date.now();
    const legacy = session.legacy;
    for (const message of post.messages) {
      this.#handle(session, legacy, message).catch((error) => {
        this.svc.log.error("legacy message failed", {
          session: session.id.slice(0, 8),
          error: String(error),
        });
      });
    }
    return new Response("Accepted", { status: 202, headers: { "content-type": "text/plain" } });
  }

  async #handle(session: Session, legacy: LegacyStream, { kind, message }: Classified) {
    const reply = legacy.reply;
    const id = message.id as JsonRpcId;
    if (kind === "request" && message.method === "initialize") {
      return await this.#initialize(session, legacy, message);
    }
    if (!legacy.initialized) {
      if (kind === "request") {
        reply.end(errorBody(id, ErrorCode.InvalidRequest, "send initialize first"));
      }
      return;
    }
    const route = this.svc.router.route(session);
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

  async #initialize(session: Session, legacy: LegacyStream, message: Record<string, unknown>) {
    const id = message.id as JsonRpcId;
    if (legacy.initialized) {
      legacy.reply.end(
        errorBody(id, ErrorCode.InvalidRequest, "the session is already initialized"),
      );
      return;
    }
    const params = isRecord(message.params) ? message.params : {};
    try {
      const result = await this.svc.router.initialize(
        session,
        params.protocolVersion,
        LEGACY_VERSIONS,
      );
      session.protocolVersion = result.protocolVersion as string;
      session.capabilities = clientCapabilities(params.capabilities);
      session.clientName = clientName(params.clientInfo);
      legacy.initialized = true;
      this.svc.open(session);
      legacy.reply.end(resultBody(id, result));
    } catch (error) {
      legacy.reply.end(errorBody(id, ErrorCode.InternalError, (error as Error).message));
    }
  }
}
