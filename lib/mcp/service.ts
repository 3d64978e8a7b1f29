/**
 * The MCP side of the proxy: live sessions, open SSE streams, and the once-a-second tick that
 * sends keep-alives, switches long requests to SSE and ends idle sessions.
 */
import type { Logger } from "../log.ts";
import type { Limits } from "../config/schema.ts";
import type { Router } from "../router/router.ts";
import { type Session, SessionStore } from "./sessions.ts";
import { SseRegistry } from "./sse.ts";
import { type PostStream, SSE_AFTER_MS } from "./streamable-http.ts";

/** Shared state of the MCP transports. */
export class McpService {
  readonly sessions: SessionStore;
  readonly registry = new SseRegistry();
  /** POST responses still waiting to choose between JSON and SSE. */
  readonly deferred = new Set<PostStream>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly router: Router, readonly limits: Limits, readonly log: Logger) {
    this.sessions = new SessionStore(
      limits.sessionsTotal,
      (session) => {
        this.#end(session, "idle, or made room under limits.sessionsTotal/sessionsPerUser")
          .catch(() => {});
      },
      limits.sessionsPerUser,
    );
  }

  start(): void {
    this.#timer = setInterval(() => this.tick(Date.now()), 1000);
  }

  tick(now: number): void {
    for (const stream of this.deferred) {
      if (now - stream.started >= SSE_AFTER_MS) stream.openSse();
    }
    this.registry.keepAlive(now, this.limits.sseKeepAliveMs);
    this.sessions.sweep(now, this.limits.sessionIdleTimeoutMs);
  }

  /** Registers an initialized session; throws UnavailableError when no session may make room. */
  open(session: Session): void {
    this.sessions.add(session);
    this.router.attach(session);
    this.log.info("session opened", {
      session: session.id.slice(0, 8),
      server: session.server.name,
      transport: session.transport,
      protocol: session.protocolVersion,
      client: session.clientName,
      user: session.identity.login ?? session.identity.key,
    });
  }

  /** Ends a session: its streams close and its in-flight requests are cancelled. */
  async close(session: Session, reason: string): Promise<void> {
    if (!this.sessions.delete(session)) return;
    await this.#end(session, reason);
  }

  async #end(session: Session, reason: string): Promise<void> {
    session.closeStreams();
    await this.router.detach(session);
    this.log.info("session closed", {
      session: session.id.slice(0, 8),
      server: session.server.name,
      reason,
    });
  }

  /** Stops the tick and ends every stream (at shutdown). */
  shutdown(): void {
    clearInterval(this.#timer);
    this.registry.closeAll();
  }
}
