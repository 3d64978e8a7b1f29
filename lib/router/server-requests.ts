/**
 * Requests a child sends to its client (sampling, elicitation, roots): the proxy picks the one
 * downstream session that may answer, gives the request an id of its own on the way down, and
 * relays the answer back up only from that session, to the child that asked.
 */
import type { Downstream } from "./downstream.ts";
import type { Pending } from "./pending.ts";
import {
  errorBody,
  ErrorCode,
  type JsonRpcId,
  requiredClientCapability,
  resultBody,
} from "../jsonrpc.ts";

interface ServerRequest {
  session: Downstream;
  childId: JsonRpcId;
  childPid: number;
}

/** What to do with a request from the child. */
export type Routed =
  /** Answer the child with this line (ping, or a refusal). */
  | { answer: string }
  /** Send `text` on the reply stream of the request `to`. */
  | { to: Pending; text: string };

let nextDownstreamId = 1;

/**
 * The request in flight whose session declared `capability` and can take a message before its
 * final response, when that choice is clear: the newest such request, provided all of them
 * belong to one person. Never hand one person's request to another's client.
 */
export function pickRecipient(
  inFlight: Iterable<Pending>,
  capability: keyof Downstream["capabilities"],
): Pending | undefined {
  const able = [...inFlight].filter((p) => p.reply.streaming && p.session.capabilities[capability]);
  const active = able.filter((p) => !p.reply.waiting);
  const candidates = active.length > 0 ? active : able;
  let best: Pending | undefined;
  const people = new Set<string>();
  for (const pending of candidates) {
    people.add(pending.session.identityKey);
    if (!best || pending.started >= best.started) best = pending;
  }
  return people.size > 1 ? undefined : best;
}

/** The server-to-client requests of one child that a downstream session has yet to answer. */
export class ServerRequests {
  readonly #byDownstreamId = new Map<string, ServerRequest>();

  get size(): number {
    return this.#byDownstreamId.size;
  }

  /**
   * Routes a request from the child (rewriting its id in place when it goes down): `ping` is
   * answered at once (MCP ping,
   * https://modelcontextprotocol.io/specification/2025-06-18/basic/utilities/ping); sampling,
   * elicitation and roots go to the session `pickRecipient` chooses, and anything else or no
   * clear recipient is refused with -32601 (JSON-RPC 2.0 §5.1,
   * https://www.jsonrpc.org/specification#error_object).
   */
  route(message: Record<string, unknown>, inFlight: Iterable<Pending>, childPid: number): Routed {
    const childId = message.id as JsonRpcId;
    const method = message.method as string;
    if (method === "ping") return { answer: resultBody(childId, {}) };
    const capability = requiredClientCapability(method);
    if (!capability) {
      return {
        answer: errorBody(childId, ErrorCode.MethodNotFound, `method not relayed: ${method}`),
      };
    }
    const to = pickRecipient(inFlight, capability);
    if (!to) {
      return {
        answer: errorBody(
          childId,
          ErrorCode.MethodNotFound,
          `no connected client can answer ${method} now`,
        ),
      };
    }
    const downstreamId = `mop-${nextDownstreamId++}`;
    this.#byDownstreamId.set(downstreamId, { session: to.session, childId, childPid });
    message.id = downstreamId;
    return { to, text: JSON.stringify(message) };
  }

  /**
   * A downstream response (JSON-RPC 2.0 §5): the line for the child, with the child's own id
   * back, when `session` is the one the request went to and the child that asked still runs;
   * undefined otherwise (the response is dropped).
   */
  answer(
    session: Downstream,
    message: Record<string, unknown>,
    childPid: number,
  ): string | undefined {
    const key = String(message.id);
    const entry = this.#byDownstreamId.get(key);
    if (!entry || entry.session !== session) return undefined;
    this.#byDownstreamId.delete(key);
    if (childPid !== entry.childPid) return undefined; // The child restarted meanwhile.
    message.id = entry.childId;
    return JSON.stringify(message);
  }

  /**
   * The child cancelled a request it sent (MCP cancellation,
   * https://modelcontextprotocol.io/specification/2025-06-18/basic/utilities/cancellation): the
   * session it went to and the notification for it, naming the id the session knows.
   */
  cancelled(message: Record<string, unknown>): { session: Downstream; text: string } | undefined {
    const params = message.params as Record<string, unknown> | undefined;
    for (const [key, entry] of this.#byDownstreamId) {
      if (entry.childId !== params?.requestId) continue;
      this.#byDownstreamId.delete(key);
      const text = JSON.stringify({ ...message, params: { ...params, requestId: key } });
      return { session: entry.session, text };
    }
    return undefined;
  }

  /**
   * A session went away: the error responses that tell the child its requests to that session
   * will never be answered (JSON-RPC 2.0 §5: every request gets a response).
   */
  dropSession(session: Downstream): string[] {
    const lines: string[] = [];
    for (const [key, entry] of this.#byDownstreamId) {
      if (entry.session !== session) continue;
      this.#byDownstreamId.delete(key);
      lines.push(errorBody(entry.childId, ErrorCode.ConnectionClosed, "the client session closed"));
    }
    return lines;
  }

  /** Forgets every request (the child exited, or the proxy stops). */
  clear(): void {
    this.#byDownstreamId.clear();
  }
}
