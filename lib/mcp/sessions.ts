/**
 * Downstream MCP sessions. A session is only an index over (identity, server): it never
 * authenticates anything, and the caller's identity must match the one it was created for.
 */
import type { ServerConfig } from "../config/schema.ts";
import type { Identity, RoutedSession } from "../router/router.ts";
import type { Reply } from "../router/downstream.ts";
import { isRecord } from "../jsonrpc.ts";
import { base64url, randomBytes } from "../crypto.ts";
import { formatEvent, type SseWriter } from "./sse.ts";
import { EventLog, type ReplayBudget } from "./replay.ts";
import { UnavailableError } from "../children/lifecycle.ts";
import type { MergedSession } from "./merged/session.ts";

export type TransportKind = "streamable" | "legacy-sse";

export interface ClientCapabilities {
  sampling: boolean;
  elicitation: boolean;
  roots: boolean;
}

const MAX_LISTENERS = 4;

/** What a client declared it can do (MCP 2025-11-25, Lifecycle § "Initialization"). */
export function clientCapabilities(capabilities: unknown): ClientCapabilities {
  const caps = isRecord(capabilities) ? capabilities : {};
  return {
    sampling: isRecord(caps.sampling),
    elicitation: isRecord(caps.elicitation),
    roots: isRecord(caps.roots),
  };
}

/** The client's self-declared name (`clientInfo.name`), bounded, for the logs. */
export function clientName(info: unknown): string {
  return isRecord(info) && typeof info.name === "string" ? info.name.slice(0, 100) : "unknown";
}

/**
 * The one stream of a legacy HTTP+SSE session (MCP 2024-11-05, Transports § "HTTP with SSE"):
 * every reply and notification goes to it as `event: message`.
 */
export class LegacyStream {
  /** Whether the client's `initialize` succeeded. */
  initialized = false;
  readonly reply: Reply;

  constructor(readonly writer: SseWriter) {
    const send = (text: string) => writer.write(formatEvent(text, undefined, "message"));
    this.reply = { streaming: true, send, end: send };
  }
}

/** One downstream session on one server. */
export class Session implements RoutedSession {
  logLevel = -1;
  lastActive = Date.now();
  readonly events: EventLog;
  /** The legacy HTTP+SSE connection that carries every message of a legacy session. */
  legacy: LegacyStream | null = null;
  /** Its parts, one per server, on the merged endpoint (`/mcp`). */
  merged: MergedSession | null = null;
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
    replay: ReplayBudget | null = null,
    /** Random, or tagged with the owning instance when there are several (McpService.sessionId). */
    readonly id: string = randomId(),
  ) {
    this.events = new EventLog(replay);
  }

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
      this.legacy.reply.send(text);
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
    return this.#liveListener() !== undefined ||
      (this.legacy !== null && !this.legacy.writer.closed);
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
    this.legacy?.writer.close();
  }
}

/** How long a caller refused for lack of session room is told to wait. */
export const SESSIONS_FULL_RETRY_MS = 30_000;

/**
 * All live sessions, bounded in number, per identity, and in idle time. Room is made fairly:
 * an identity at its own share loses its own least recently active session; at total capacity
 * the newcomer may only displace a session of an identity holding more sessions than it would
 * (the largest such holder), else its own; with neither, it is refused (503 + Retry-After,
 * RFC 9110 §15.6.4 and §10.2.3).
 */
export class SessionStore {
  #sessions = new Map<string, Session>();
  #byIdentity = new Map<string, Set<Session>>();

  constructor(
    private readonly maxSessions: number,
    private readonly onEvict: (s: Session) => void,
    private readonly maxPerIdentity = maxSessions,
  ) {}

  get size(): number {
    return this.#sessions.size;
  }

  /** Sessions held by one identity. */
  countOf(identityKey: string): number {
    return this.#byIdentity.get(identityKey)?.size ?? 0;
  }

  /**
   * Registers a session, ending the one the fairness rule picks when full. Adding a session
   * that is already stored changes nothing. Throws UnavailableError when no session may go.
   */
  add(session: Session): void {
    if (this.#sessions.has(session.id)) return;
    const victim = this.#makeRoom(session.identityKey);
    if (victim) this.#evict(victim);
    this.#sessions.set(session.id, session);
    let own = this.#byIdentity.get(session.identityKey);
    if (!own) this.#byIdentity.set(session.identityKey, own = new Set());
    own.add(session);
  }

  /** The refusal `add` would throw for a new session of `identityKey`, without ending any. */
  refusal(identityKey: string): UnavailableError | null {
    try {
      this.#makeRoom(identityKey);
      return null;
    } catch (error) {
      if (error instanceof UnavailableError) return error;
      throw error;
    }
  }

  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  delete(session: Session): boolean {
    if (this.#sessions.get(session.id) !== session) return false;
    this.#sessions.delete(session.id);
    const own = this.#byIdentity.get(session.identityKey);
    own?.delete(session);
    if (own?.size === 0) this.#byIdentity.delete(session.identityKey);
    return true;
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

  /** The session to end so that one more of `key` fits: null when there is room. */
  #makeRoom(key: string): Session | null {
    const own = this.#byIdentity.get(key);
    const count = own?.size ?? 0;
    if (own && count >= this.maxPerIdentity) return leastActive(own);
    if (this.#sessions.size < this.maxSessions) return null;
    let largest: Set<Session> | undefined;
    for (const [other, sessions] of this.#byIdentity) {
      if (other !== key && (!largest || sessions.size > largest.size)) largest = sessions;
    }
    // Only a holder that would still have more than the newcomer gives up a session.
    if (largest && largest.size > count + 1) return leastActive(largest);
    if (own && count > 0) return leastActive(own);
    throw new UnavailableError(
      "too many sessions (limits.sessionsTotal); try again later",
      SESSIONS_FULL_RETRY_MS,
    );
  }

  #evict(session: Session): void {
    if (this.delete(session)) this.onEvict(session);
  }
}

function leastActive(sessions: Iterable<Session>): Session {
  let oldest: Session | undefined;
  for (const s of sessions) if (!oldest || s.lastActive < oldest.lastActive) oldest = s;
  return oldest!;
}

/** 128 random bits, base64url: visible ASCII as the transport requires. */
export function randomId(bytes = 16): string {
  return base64url(randomBytes(bytes));
}
