/**
 * Downstream MCP sessions. A session is only an index over (identity, server): it never
 * authenticates anything, and the caller's identity must match the one it was created for.
 */
import type { ServerConfig } from "../config/schema.ts";
import type { Identity, RoutedSession } from "../router/router.ts";
import { base64url, randomBytes } from "../crypto.ts";
import { EventLog, formatEvent, type SseWriter } from "./sse.ts";

export type TransportKind = "streamable" | "legacy-sse";

export interface ClientCapabilities {
  sampling: boolean;
  elicitation: boolean;
  roots: boolean;
}

const MAX_LISTENERS = 4;

/** One downstream session on one server. */
export class Session implements RoutedSession {
  readonly id = randomId();
  logLevel = -1;
  lastActive = Date.now();
  readonly events = new EventLog();
  /** The legacy HTTP+SSE connection that carries every message of a legacy session. */
  legacy: SseWriter | null = null;
  /** POST response streams still in progress, by stream id, for `Last-Event-ID` resumption. */
  readonly resumable = new Map<number, { attach(writer: SseWriter): void }>();
  #listeners: SseWriter[] = [];
  #standaloneSeq = 0;
  #delivered = 0;
  #nextStream = 1;

  constructor(
    readonly server: ServerConfig,
    readonly identity: Identity,
    readonly transport: TransportKind,
    public protocolVersion: string,
    public capabilities: ClientCapabilities,
    public clientName: string,
  ) {}

  get identityKey(): string {
    return this.identity.key;
  }

  /** True when `identity` may use this session (same person, same OAuth client). */
  belongsTo(identity: Identity): boolean {
    return identity.key === this.identity.key && identity.clientId === this.identity.clientId;
  }

  /** A fresh id for a POST response stream; 0 is the standalone GET stream. */
  nextStreamId(): number {
    return this.#nextStream++;
  }

  /** Sends a session-wide message on the standalone stream, or keeps it for the next GET. */
  notify(text: string): void {
    if (this.legacy) {
      this.legacy.write(formatEvent(text, undefined, "message"));
      return;
    }
    const seq = ++this.#standaloneSeq;
    const event = formatEvent(text, `0_${seq}`);
    this.events.push(0, seq, event);
    const listener = this.#liveListener();
    if (listener && listener.write(event)) this.#delivered = seq;
  }

  /** Adds a GET stream; it receives what was sent while no stream was open. */
  addListener(writer: SseWriter, resumeAfter?: number): void {
    this.#listeners = this.#listeners.filter((w) => !w.closed);
    this.#listeners.push(writer);
    // A client may hold several GET streams; keep the newest few and end the rest.
    while (this.#listeners.length > MAX_LISTENERS) this.#listeners.shift()!.close();
    const from = resumeAfter ?? this.#delivered;
    for (const event of this.events.after(0, from)) writer.write(event);
    this.#delivered = this.#standaloneSeq;
  }

  get hasListener(): boolean {
    return this.#liveListener() !== undefined || (this.legacy !== null && !this.legacy.closed);
  }

  #liveListener(): SseWriter | undefined {
    for (let i = this.#listeners.length - 1; i >= 0; i--) {
      if (!this.#listeners[i].closed) return this.#listeners[i];
    }
    return undefined;
  }

  /** Ends every stream of the session. */
  closeStreams(): void {
    for (const writer of this.#listeners) writer.close();
    this.#listeners = [];
    this.legacy?.close();
  }
}

/** All live sessions, bounded in number and idle time. */
export class SessionStore {
  #sessions = new Map<string, Session>();

  constructor(
    private readonly maxSessions: number,
    private readonly onEvict: (s: Session) => void,
  ) {}

  get size(): number {
    return this.#sessions.size;
  }

  /** Registers a session, evicting the least recently active one when full. */
  add(session: Session): void {
    if (this.#sessions.size >= this.maxSessions) {
      let oldest: Session | undefined;
      for (const s of this.#sessions.values()) {
        if (!oldest || s.lastActive < oldest.lastActive) oldest = s;
      }
      if (oldest) this.#evict(oldest);
    }
    this.#sessions.set(session.id, session);
  }

  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  delete(session: Session): boolean {
    return this.#sessions.delete(session.id);
  }

  /** Ends sessions idle for `idleMs` that hold no open stream. */
  sweep(now: number, idleMs: number): void {
    for (const session of this.#sessions.values()) {
      if (now - session.lastActive >= idleMs && !session.hasListener) this.#evict(session);
    }
  }

  all(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  #evict(session: Session): void {
    this.#sessions.delete(session.id);
    this.onEvict(session);
  }
}

/** 128 random bits, base64url: visible ASCII as the transport requires. */
export function randomId(bytes = 16): string {
  return base64url(randomBytes(bytes));
}
