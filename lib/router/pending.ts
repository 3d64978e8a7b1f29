/**
 * The requests in flight on one child. Many downstream sessions share one stdio connection, so
 * each request gets a fresh numeric id (and, when it asked for progress, a fresh progress token)
 * before it reaches the child; the table maps them back.
 */
import type { Downstream, Reply } from "./downstream.ts";
import { isRecord, type JsonRpcId } from "../jsonrpc.ts";

/** One downstream request sent to the child and not yet answered. */
export interface Pending {
  /** The id (and progress token) the child knows the request by. */
  readonly childId: number;
  readonly session: Downstream;
  readonly originalId: JsonRpcId;
  /** The client's own progress token; `hasToken` tells an absent token from an undefined one. */
  readonly originalToken: unknown;
  readonly hasToken: boolean;
  readonly reply: Reply;
  readonly method: string;
  /** The tool of a `tools/call`. */
  readonly tool?: string;
  /** The tool's arguments, only when kept for the audit log. */
  readonly arguments?: unknown;
  readonly started: number;
  readonly deadline: number;
}

/** How to record a request: when it started, its timeout, whether to keep tool arguments. */
export interface OpenOptions {
  now: number;
  timeoutMs: number;
  keepArguments?: boolean;
}

/** The pending requests of one child, by the id the child knows them by. */
export class PendingTable {
  readonly #byChildId = new Map<number, Pending>();
  #nextId = 1;

  get size(): number {
    return this.#byChildId.size;
  }

  values(): IterableIterator<Pending> {
    return this.#byChildId.values();
  }

  /**
   * Records a downstream request and rewrites `message` in place for the child: its id becomes
   * a number unique on this child (JSON-RPC 2.0 §4: the id is the sender's, and the proxy is
   * the one sender the child sees, https://www.jsonrpc.org/specification#request_object), and a
   * progress token becomes that same number (MCP progress: tokens must be unique across active
   * requests,
   * https://modelcontextprotocol.io/specification/2025-06-18/basic/utilities/progress).
   */
  open(
    session: Downstream,
    message: Record<string, unknown>,
    reply: Reply,
    options: OpenOptions,
  ): Pending {
    const childId = this.#nextId++;
    const params = message.params as Record<string, unknown> | undefined;
    const tool = message.method === "tools/call" && typeof params?.name === "string"
      ? params.name
      : undefined;
    const meta = params?._meta;
    const hasToken = isRecord(meta) && meta.progressToken !== undefined;
    const pending: Pending = {
      childId,
      session,
      originalId: message.id as JsonRpcId,
      originalToken: hasToken ? meta.progressToken : undefined,
      hasToken,
      reply,
      method: message.method as string,
      tool,
      arguments: options.keepArguments && tool !== undefined ? params?.arguments : undefined,
      started: options.now,
      deadline: options.now + options.timeoutMs,
    };
    if (hasToken) meta.progressToken = childId;
    message.id = childId;
    this.#byChildId.set(childId, pending);
    return pending;
  }

  /** The request the child answers with `id`. */
  get(id: unknown): Pending | undefined {
    return typeof id === "number" ? this.#byChildId.get(id) : undefined;
  }

  /** Removes a request; false when it was already gone. */
  delete(pending: Pending): boolean {
    return this.#byChildId.delete(pending.childId);
  }

  /** The request `session` sent with id `requestId` (a client's notifications/cancelled). */
  find(session: Downstream, requestId: unknown): Pending | undefined {
    for (const pending of this.#byChildId.values()) {
      if (pending.session === session && pending.originalId === requestId) return pending;
    }
    return undefined;
  }

  /**
   * Where a child's `notifications/progress` goes: the request whose rewritten token it names,
   * when that request asked for progress and its reply can carry it. Restores the client's token
   * in `params`.
   */
  progress(params: Record<string, unknown> | undefined): Pending | undefined {
    const pending = this.get(params?.progressToken);
    if (!pending || !pending.hasToken || !pending.reply.streaming) return undefined;
    params!.progressToken = pending.originalToken;
    return pending;
  }

  /**
   * For a child notification stdio does not link to any request: the newest request in flight
   * when every request in flight belongs to one session; "ambiguous" when they belong to several;
   * undefined when nothing is in flight.
   */
  soleSession(): Pending | "ambiguous" | undefined {
    let target: Pending | undefined;
    for (const pending of this.#byChildId.values()) {
      if (pending.reply.waiting) continue;
      if (target && target.session !== pending.session) return "ambiguous";
      if (!target || pending.started >= target.started) target = pending;
    }
    return target;
  }

  /** The requests of one session. */
  ofSession(session: Downstream): Pending[] {
    return [...this.#byChildId.values()].filter((pending) => pending.session === session);
  }

  /** The requests whose deadline has passed. */
  overdue(now: number): Pending[] {
    return [...this.#byChildId.values()].filter((pending) => pending.deadline <= now);
  }
}
