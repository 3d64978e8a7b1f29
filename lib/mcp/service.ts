/**
 * The MCP side of the proxy: live sessions, open SSE streams, and the once-a-second tick that
 * sends keep-alives and ends idle sessions.
 */
import type { Logger } from "../log.ts";
import type { Limits } from "../config/schema.ts";
import type { Router } from "../router/router.ts";
import type { Reply } from "../router/downstream.ts";
import { randomId, type Session, SessionStore } from "./sessions.ts";
import type { MergedHost, MergedSession } from "./merged/session.ts";
import { lazyImport } from "../lazy.ts";
import { SseRegistry, SseWriter } from "./sse.ts";
import { ReplayBudget } from "./replay.ts";
import type { Instances } from "../instances/instances.ts";

/** A session's way to its child, or to its children on the merged endpoint. */
export interface SessionRoute {
  readonly ready: boolean;
  prepare(): Promise<void>;
  request(message: Record<string, unknown>, reply: Reply): void;
  notification(message: Record<string, unknown>): void;
  response(message: Record<string, unknown>): void;
}

/** The merged endpoint's sessions (./merged/), loaded when the first one opens. */
const mergedEndpoint = lazyImport("the merged endpoint", () => import("./merged/session.ts"));

/** Shared state of the MCP transports. */
export class McpService {
  /** What sessions of the merged endpoint need, when it is served (config `merged`). */
  merged: MergedHost | null = null;
  /** The merged sessions of open 2026-07-28 listen streams on `/mcp` (no 2025 session's). */
  readonly mergedStreams = new Set<MergedSession>();
  readonly sessions: SessionStore;
  readonly registry: SseRegistry;
  /** Bytes of sent events kept for resumption, across every session. */
  readonly replay: ReplayBudget;
  /** This instance among several (absent: the only one); set once at start. */
  instances: Instances | undefined;
  /**
   * The key kept in the store from which the 2026-07-28 lane derives the key that seals its
   * request states (absent: a random key per process); set once at start.
   */
  requestStateSecret: Uint8Array | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #atShutdown: (() => void)[] = [];

  constructor(readonly router: Router, readonly limits: Limits, readonly log: Logger) {
    // Room for one largest message plus as much again that the client has not read yet.
    this.registry = new SseRegistry(2 * limits.maxMessageOutBytes);
    this.replay = new ReplayBudget(limits.resumeBufferBytes);
    this.sessions = new SessionStore(
      limits.sessionsTotal,
      (session) => {
        this.#end(session, "idle, or made room under limits.sessionsTotal/sessionsPerUser")
          .catch(() => {});
      },
      limits.sessionsPerUser,
    );
  }

  /** A new session id: random, or tagged with this instance when there are several. */
  sessionId(): Promise<string> {
    return this.instances ? this.instances.sessionId() : Promise.resolve(randomId());
  }

  start(): void {
    this.#timer = setInterval(() => this.tick(Date.now()), 1000);
  }

  tick(now: number): void {
    this.registry.keepAlive(now, this.limits.sseKeepAliveMs);
    this.sessions.sweep(now, this.limits.sessionIdleTimeoutMs);
  }

  /**
   * Gives a new session of the merged endpoint its parts (one per server the identity may
   * use); false when the endpoint is not served.
   */
  async mergeSession(session: Session): Promise<boolean> {
    if (!this.merged) return false;
    const { MergedSession } = await mergedEndpoint();
    session.merged = await MergedSession.open(this.merged, session);
    return true;
  }

  /**
   * Has every merged session ask again which servers its person may use (after a reload changed
   * the allow-lists), so the lists change, with their notifications, without waiting for a request.
   */
  recheckMerged(): Promise<void> {
    const checks = [...this.sessions.all()].map((session) => session.merged?.recheck());
    for (const stream of this.mergedStreams) checks.push(stream.recheck());
    return Promise.allSettled(checks).then(() => {});
  }

  /**
   * Initializes the session's child (or, merged, its children) and returns the InitializeResult
   * for the client (see `Router.initialize`).
   */
  initialize(
    session: Session,
    requestedVersion: unknown,
    supported: readonly string[],
  ): Promise<Record<string, unknown>> {
    if (session.merged) return session.merged.initialize(requestedVersion, supported);
    return this.router.initialize(session, requestedVersion, supported);
  }

  /** The session's way to its child, looked up once per HTTP request. */
  route(session: Session): SessionRoute {
    return session.merged ?? this.router.route(session);
  }

  /** Forgets a session at the router (its per-session children end). */
  async detach(session: Session): Promise<void> {
    if (session.merged) await session.merged.detach();
    else await this.router.detach(session);
  }

  /** Registers an initialized session; throws UnavailableError when no session may make room. */
  open(session: Session): void {
    this.sessions.add(session);
    if (session.merged) session.merged.attach();
    else this.router.attach(session);
    this.log.info("session opened", {
      session: session.id.slice(0, 8),
      server: session.server.name,
      transport: session.transport,
      protocol: session.protocolVersion,
      client: session.clientName,
      user: session.identity.login ?? session.identity.key,
    });
  }

  /**
   * A new SSE response stream of `session`. A client that lets it queue more than the
   * registry's limit unread loses the stream and the session (the child keeps running).
   */
  stream(session: Session): SseWriter {
    return new SseWriter(this.registry, (queued) => this.#overflow(session, queued));
  }

  #overflow(session: Session, queued: number): void {
    if (this.sessions.get(session.id) !== session) return;
    this.log.warn("SSE stream over its queue limit: the client is not reading; session ended", {
      session: session.id.slice(0, 8),
      server: session.server.name,
      user: session.identity.login ?? session.identity.key,
      queued,
      limit: this.registry.maxQueuedBytes,
    });
    this.close(session, "client not reading its stream").catch(() => {});
  }

  /** Ends a session: its streams close and its in-flight requests are cancelled. */
  async close(session: Session, reason: string): Promise<void> {
    if (!this.sessions.delete(session)) return;
    await this.#end(session, reason);
  }

  async #end(session: Session, reason: string): Promise<void> {
    session.closeStreams();
    session.events.clear();
    await this.detach(session);
    this.log.info("session closed", {
      session: session.id.slice(0, 8),
      server: session.server.name,
      reason,
    });
  }

  /** Runs `hook` at shutdown, before the streams end (a part loaded on first use clears up). */
  atShutdown(hook: () => void): void {
    this.#atShutdown.push(hook);
  }

  /** Stops the tick and ends every stream (at shutdown). */
  shutdown(): void {
    for (const hook of this.#atShutdown.splice(0)) hook();
    clearInterval(this.#timer);
    this.registry.closeAll();
  }
}
