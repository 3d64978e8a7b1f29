/**
 * One downstream session's way to its child, looked up once per HTTP request: whether the child
 * is ready, waiting until it is, and relaying the request's messages, with the methods the proxy
 * answers itself.
 */
import type { Downstream, Reply } from "./downstream.ts";
import type { Mux } from "./mux.ts";
import { errorBody, ErrorCode, type JsonRpcId, logRank, resultBody } from "../jsonrpc.ts";

export class Route {
  /**
   * @param ensureReady starts the child if needed and waits until it is ready (the router's
   * start path, which knows about the shutdown)
   */
  constructor(
    readonly session: Downstream,
    readonly mux: Mux,
    private readonly ensureReady: (mux: Mux) => Promise<void>,
  ) {}

  /** Whether the child can take a request now, without waiting (the fast path). */
  get ready(): boolean {
    return this.mux.supervisor.state === "ready";
  }

  /**
   * Makes sure the child can take a message, starting it if needed; throws UnavailableError,
   * SpawnError or StartError when it cannot.
   */
  async prepare(): Promise<void> {
    this.mux.sessions.add(this.session);
    if (!this.ready) await this.ensureReady(this.mux);
  }

  /**
   * Relays a downstream request, answering the methods the proxy owns itself: `ping` (MCP ping,
   * https://modelcontextprotocol.io/specification/2025-06-18/basic/utilities/ping), a second
   * `initialize` (the session is initialized once, MCP lifecycle,
   * https://modelcontextprotocol.io/specification/2025-06-18/basic/lifecycle), and
   * `logging/setLevel` (MCP logging,
   * https://modelcontextprotocol.io/specification/2025-06-18/server/utilities/logging), kept per
   * session because one child may serve several sessions. The server's filters (gate.ts) see
   * every other request.
   */
  request(message: Record<string, unknown>, reply: Reply): void {
    const id = message.id as JsonRpcId;
    switch (message.method) {
      case "ping":
        reply.end(resultBody(id, {}));
        return;
      case "initialize":
        reply.end(errorBody(id, ErrorCode.InvalidRequest, "the session is already initialized"));
        return;
      case "logging/setLevel": {
        const level = (message.params as Record<string, unknown> | undefined)?.level;
        if (logRank(level) < 0) {
          reply.end(errorBody(id, ErrorCode.InvalidParams, "unknown log level"));
          return;
        }
        if (this.mux.initResult?.capabilities.logging !== undefined) {
          this.session.logLevel = logRank(level);
          reply.end(resultBody(id, {}));
          return;
        }
        break;
      }
    }
    const gate = this.mux.gate;
    if (gate) {
      gate.request(this.session, message, reply, (m, r) => this.mux.request(this.session, m, r));
    } else this.mux.request(this.session, message, reply);
  }

  /** Relays a downstream notification (JSON-RPC 2.0 §4.1). */
  notification(message: Record<string, unknown>): void {
    this.mux.notification(this.session, message);
  }

  /** Relays a downstream answer to a request the child sent (JSON-RPC 2.0 §5). */
  response(message: Record<string, unknown>): void {
    this.mux.response(this.session, message);
  }
}
