/**
 * Multiplexes many downstream sessions onto one supervised child: rewrites JSON-RPC ids and
 * progress tokens so callers never collide, sends each response and request-scoped
 * notification only to the stream that asked, and relays server-to-client requests to a
 * caller that can answer them.
 */
import type { Logger } from "../log.ts";
import { Supervisor, type SupervisorOptions } from "../children/supervisor.ts";
import type { InitializeResult } from "../children/lifecycle.ts";
import {
  BROADCAST_NOTIFICATIONS,
  errorBody,
  ErrorCode,
  isRecord,
  type JsonRpcId,
  logRank,
} from "../jsonrpc.ts";
import type { Downstream, Reply } from "./downstream.ts";
import { type Pending, PendingTable } from "./pending.ts";
import { ServerRequests } from "./server-requests.ts";
import { ToolCatalogue } from "./tool-catalogue.ts";
import { ListCatalogue } from "./catalogue.ts";
import { Gate, type Refusal } from "./gate.ts";
import { promisedListChanges } from "./list-changes.ts";
import type { Policy } from "../policy/policy.ts";

/** What the router learns about each finished request (for the audit log and metrics). */
export interface Completion {
  session: Downstream;
  server: string;
  method: string;
  tool?: string;
  /** The tool's arguments, only when the server's config opts in (`logArguments`). */
  arguments?: unknown;
  durationMs: number;
  outcome: "ok" | "error" | "tool_error" | "timeout" | "cancelled" | "child_exit";
}

/** A downstream request not yet sent to the child. */
interface Waiting {
  session: Downstream;
  message: Record<string, unknown>;
  reply: Reply;
}

/** The answer to every call still open when the proxy stops. */
export const SHUTTING_DOWN = "proxy shutting down";
/** The error answering a request whose session ended before its answer. */
export const SESSION_ENDED = "the session ended";

export interface MuxOptions extends SupervisorOptions {
  requestTimeoutMs: number;
  maxInFlight: number;
  /** The mode's sessions may belong to several people: never guess a recipient across them. */
  shared: boolean;
  /** Keep tool arguments for the audit log. */
  logArguments?: boolean;
  onComplete?: (completion: Completion) => void;
  /** The server's filters; absent or empty lets everything through. */
  policy?: Policy | null;
  /** Told of each request the filters refused (for the audit log). */
  onRefusal?: (refusal: Refusal) => void;
}

/** One child and everything in flight on it. */
export class Mux {
  readonly supervisor: Supervisor;
  readonly sessions = new Set<Downstream>();
  readonly #pending = new PendingTable();
  readonly #serverRequests = new ServerRequests();
  /** The child's tools (its `tools/list`), kept until the list or the child changes. */
  readonly tools = new ToolCatalogue((cursor) =>
    this.#ownRequest("tools/list", cursor === undefined ? {} : { cursor })
  );
  /** The tools the server's filters show: a hidden tool is as unknown here as an absent one. */
  readonly visibleTools: Pick<ToolCatalogue, "tool" | "known"> = ((mux: Mux) => ({
    /** The kept list as is only when no tool filter hides anything; else each name is judged. */
    get known() {
      return mux.gate?.policy.filters("tools") ? null : mux.tools.known;
    },
    tool: async (name: string) => {
      const tool = await mux.tools.tool(name);
      return tool && mux.gate?.policy.tool(tool).allowed === false ? undefined : tool;
    },
  }))(this);
  /** The child's prompts and resource templates, kept the same way (for the filters). */
  readonly prompts = new ListCatalogue(
    { key: "prompts", nameField: "name" },
    (cursor) => this.#ownRequest("prompts/list", cursor === undefined ? {} : { cursor }),
  );
  readonly templates = new ListCatalogue(
    { key: "resourceTemplates", nameField: "uriTemplate" },
    (cursor) =>
      this.#ownRequest("resources/templates/list", cursor === undefined ? {} : { cursor }),
  );
  /** The server's filters in front of this child, or null when it has none. */
  gate: Gate | null = null;
  #ownRequests = 0;
  #queue: Waiting[] = [];
  #waiting = new Set<Waiting>();
  #closing = false;
  #log: Logger;

  /** @param owner whose child this is, for the per-user limit ("shared" for nobody's) */
  constructor(public owner: string, readonly options: MuxOptions) {
    this.#log = options.log;
    this.supervisor = new Supervisor(options, {
      onMessage: (message) => this.#fromChild(message),
      onExit: (description) => this.#childExited(description),
      onReady: (restarted) => {
        this.#forgetLists();
        if (restarted) this.#announceRestart();
        const pid = this.#childPid;
        for (const session of this.sessions) session.childReady?.(pid);
      },
    });
    this.usePolicy(options.policy ?? null);
  }

  /** Puts `policy` in front of the child from the next request on (start, or a config reload). */
  usePolicy(policy: Policy | null): void {
    this.gate = policy?.any
      ? new Gate(policy, this.options.spec.server, {
        tools: this.tools,
        prompts: this.prompts,
        resourceTemplates: this.templates,
      }, this.options.onRefusal)
      : null;
  }

  /** A new child, or none: every kept list is stale. */
  #forgetLists(): void {
    this.tools.invalidate();
    this.prompts.invalidate();
    this.templates.invalidate();
  }

  /**
   * A request of the proxy's own to the child (JSON-RPC 2.0 §4), through the same id rewriting,
   * limits and timeout as the callers' requests; resolves with its `result`.
   */
  #ownRequest(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    const { promise, resolve, reject } = Promise.withResolvers<Record<string, unknown>>();
    const reply: Reply = {
      streaming: false,
      // Nothing the child sends unprompted is for the proxy's own request.
      waiting: true,
      send: () => {},
      end: (text) => {
        const message = JSON.parse(text) as Record<string, unknown>;
        if (isRecord(message.result)) resolve(message.result);
        else {
          const error = isRecord(message.error) ? String(message.error.message) : "no result";
          reject(new Error(`${method}: ${error}`));
        }
      },
    };
    const id = `proxy-${++this.#ownRequests}`;
    this.request(this.#proxy, { jsonrpc: "2.0", id, method, params }, reply);
    return promise;
  }

  /** The proxy itself as the downstream of its own requests: it answers no server request. */
  readonly #proxy: Downstream = {
    id: "proxy",
    get identityKey() {
      return "proxy";
    },
    capabilities: { sampling: false, elicitation: false, roots: false },
    logLevel: Number.POSITIVE_INFINITY,
    notify: () => {},
  };

  get inFlight(): number {
    return this.#pending.size;
  }

  get initResult(): InitializeResult | null {
    return this.supervisor.initResult;
  }

  /**
   * Relays one downstream request to the child under an id of the proxy's (JSON-RPC 2.0 §4,
   * https://www.jsonrpc.org/specification#request_object); the answer goes to `reply` with the
   * client's id back. Waits for a ready child, and beyond `maxInFlight` for a turn.
   */
  request(session: Downstream, message: Record<string, unknown>, reply: Reply): void {
    const id = message.id as JsonRpcId;
    if (this.#closing) {
      reply.end(errorBody(id, ErrorCode.ConnectionClosed, SHUTTING_DOWN));
      return;
    }
    if (this.#pending.size >= this.options.maxInFlight) {
      if (this.#queue.length >= this.options.maxInFlight * 4) {
        reply.end(
          errorBody(id, ErrorCode.InternalError, "server busy: too many requests in flight"),
        );
        return;
      }
      this.#queue.push({ session, message, reply });
      return;
    }
    const sup = this.supervisor;
    if (sup.state !== "ready") {
      const waiting: Waiting = { session, message, reply };
      this.#waiting.add(waiting);
      sup.ready().then(
        () => {
          if (this.#waiting.delete(waiting)) this.#dispatch(session, message, reply);
        },
        (error) => {
          if (this.#waiting.delete(waiting)) {
            reply.end(errorBody(id, ErrorCode.InternalError, error.message));
          }
        },
      );
      return;
    }
    this.#dispatch(session, message, reply);
  }

  /** Requests waiting for a turn (maxInFlight) or for the child to become ready. */
  get queued(): number {
    return this.#queue.length + this.#waiting.size;
  }

  /**
   * The proxy is stopping: every call in flight, queued or waiting for the child gets a
   * JSON-RPC error now (JSON-RPC 2.0 §5: every request gets a response), before the child stops.
   */
  shutdown(): void {
    this.#closing = true;
    const end = (waiting: Waiting) =>
      waiting.reply.end(
        errorBody(waiting.message.id as JsonRpcId, ErrorCode.ConnectionClosed, SHUTTING_DOWN),
      );
    for (const waiting of this.#queue.splice(0)) end(waiting);
    for (const waiting of [...this.#waiting]) end(waiting);
    this.#waiting.clear();
    for (const pending of [...this.#pending.values()]) {
      this.#finish(pending, "cancelled");
      pending.reply.end(errorBody(pending.originalId, ErrorCode.ConnectionClosed, SHUTTING_DOWN));
    }
    this.#serverRequests.clear();
  }

  #dispatch(session: Downstream, message: Record<string, unknown>, reply: Reply): void {
    const pending = this.#pending.open(session, message, reply, {
      now: Date.now(),
      timeoutMs: this.options.requestTimeoutMs,
      keepArguments: this.options.logArguments,
    });
    if (!this.supervisor.send(JSON.stringify(message))) {
      this.#finish(pending, "child_exit");
      reply.end(
        errorBody(pending.originalId, ErrorCode.InternalError, "server is restarting; try again"),
      );
    }
  }

  /**
   * A notification from a downstream session (JSON-RPC 2.0 §4.1). A client's
   * `notifications/cancelled` is rewritten to the id the child knows and answers the cancelled
   * call (MCP cancellation,
   * https://modelcontextprotocol.io/specification/2025-06-18/basic/utilities/cancellation);
   * `notifications/initialized` stays with the proxy, which initialized the child itself.
   */
  notification(session: Downstream, message: Record<string, unknown>): void {
    const method = message.method;
    if (method === "notifications/initialized") return; // The proxy initialized the child itself.
    if (method === "notifications/cancelled") {
      const params = message.params as Record<string, unknown> | undefined;
      const pending = this.#pending.find(session, params?.requestId);
      if (!pending) return;
      this.#finish(pending, "cancelled");
      this.supervisor.send(JSON.stringify({
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: pending.childId, reason: params?.reason },
      }));
      pending.reply.end(
        errorBody(pending.originalId, ErrorCode.RequestCancelled, "request cancelled"),
      );
      return;
    }
    this.supervisor.send(JSON.stringify(message));
  }

  /**
   * A downstream answer to a request the child sent (JSON-RPC 2.0 §5,
   * https://www.jsonrpc.org/specification#response_object), relayed only from the session it
   * went to.
   */
  response(session: Downstream, message: Record<string, unknown>): void {
    const line = this.#serverRequests.answer(session, message, this.#childPid);
    if (line === undefined) {
      this.#log.debug("dropping a response to an unknown server request", { session: session.id });
      return;
    }
    this.supervisor.send(line);
  }

  /**
   * Forgets a session: its requests in flight are cancelled at the child, those not sent yet
   * never reach it, and each gets an error answer (JSON-RPC 2.0 §5).
   */
  detach(session: Downstream): void {
    this.sessions.delete(session);
    const ended = (reply: Reply, id: unknown) =>
      reply.end(errorBody(id as JsonRpcId, ErrorCode.ConnectionClosed, SESSION_ENDED));
    const mine = (waiting: Waiting) => waiting.session === session;
    const unsent = [...this.#queue.filter(mine), ...[...this.#waiting].filter(mine)];
    this.#queue = this.#queue.filter((waiting) => !mine(waiting));
    for (const waiting of unsent) {
      this.#waiting.delete(waiting);
      ended(waiting.reply, waiting.message.id);
    }
    for (const pending of this.#pending.ofSession(session)) {
      this.#finish(pending, "cancelled");
      this.supervisor.send(JSON.stringify({
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: pending.childId, reason: "session closed" },
      }));
      ended(pending.reply, pending.originalId);
    }
    for (const line of this.#serverRequests.dropSession(session)) this.supervisor.send(line);
  }

  /**
   * Times out overdue requests, called about once a second: the caller gets an error and the
   * child a `notifications/cancelled` (MCP cancellation,
   * https://modelcontextprotocol.io/specification/2025-06-18/basic/utilities/cancellation).
   */
  sweep(now: number): void {
    for (const pending of this.#pending.overdue(now)) {
      this.#finish(pending, "timeout");
      const seconds = Math.round(this.options.requestTimeoutMs / 1000);
      this.supervisor.send(JSON.stringify({
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: pending.childId, reason: `timed out after ${seconds}s` },
      }));
      pending.reply.end(
        errorBody(
          pending.originalId,
          ErrorCode.RequestTimeout,
          `request timed out after ${seconds}s`,
        ),
      );
    }
  }

  #finish(pending: Pending, outcome: Completion["outcome"]): void {
    if (!this.#pending.delete(pending)) return;
    this.options.onComplete?.({
      session: pending.session,
      server: this.options.spec.server,
      method: pending.method,
      tool: pending.tool,
      arguments: pending.arguments,
      durationMs: Date.now() - pending.started,
      outcome,
    });
    const next = this.#queue.shift();
    if (next) this.request(next.session, next.message, next.reply);
  }

  #fromChild(message: Record<string, unknown>): void {
    if (typeof message.method === "string") {
      if (message.id !== undefined && message.id !== null) this.#serverRequest(message);
      else this.#childNotification(message);
      return;
    }
    const pending = this.#pending.get(message.id);
    if (!pending) {
      this.#log.debug("dropping a response for no pending request", {
        child: this.supervisor.label,
      });
      return;
    }
    const result = message.result as Record<string, unknown> | undefined;
    this.#finish(pending, message.error ? "error" : result?.isError === true ? "tool_error" : "ok");
    message.id = pending.originalId;
    if (pending.reply.endMessage) pending.reply.endMessage(message);
    else pending.reply.end(JSON.stringify(message));
  }

  #childNotification(message: Record<string, unknown>): void {
    const method = message.method as string;
    if (method === "notifications/tools/list_changed") this.tools.invalidate();
    if (method === "notifications/prompts/list_changed") this.prompts.invalidate();
    if (method === "notifications/resources/list_changed") this.templates.invalidate();
    if (this.gate && !this.gate.delivers(message)) return;
    if (BROADCAST_NOTIFICATIONS.has(method)) {
      const text = JSON.stringify(message);
      for (const session of this.sessions) session.notify(text);
      return;
    }
    const params = message.params as Record<string, unknown> | undefined;
    if (method === "notifications/progress") {
      this.#pending.progress(params)?.reply.send(JSON.stringify(message));
      return;
    }
    if (method === "notifications/cancelled") {
      // The child gave up on a request it sent to a client.
      const cancelled = this.#serverRequests.cancelled(message);
      cancelled?.session.notify(cancelled.text);
      return;
    }
    if (method === "notifications/message" && logRank(params?.level) < 0) return;
    this.#routeUnrelated(message, method === "notifications/message" ? logRank(params?.level) : -1);
  }

  /**
   * Stdio carries no link between a notification and the request it belongs to. Deliver it
   * where the answer is unambiguous: to the one session with requests in flight, or, when
   * nothing is in flight and the child is not shared between people, to every session on it.
   */
  #routeUnrelated(message: Record<string, unknown>, rank: number): void {
    const target = this.#pending.soleSession();
    if (target === "ambiguous") return; // Tell nobody.
    const text = JSON.stringify(message);
    if (target) {
      if (rank < target.session.logLevel) return;
      if (target.reply.streaming) target.reply.send(text);
      else target.session.notify(text);
      return;
    }
    if (this.options.shared) return;
    for (const session of this.sessions) if (rank >= session.logLevel) session.notify(text);
  }

  #serverRequest(message: Record<string, unknown>): void {
    const routed = this.#serverRequests.route(message, this.#pending.values(), this.#childPid);
    if ("answer" in routed) this.supervisor.send(routed.answer);
    else routed.to.reply.send(routed.text);
  }

  get #childPid(): number {
    return this.supervisor.child?.pid ?? -1;
  }

  #childExited(description: string): void {
    this.#forgetLists();
    for (const pending of [...this.#pending.values()]) {
      this.#finish(pending, "child_exit");
      pending.reply.end(errorBody(pending.originalId, ErrorCode.InternalError, description));
    }
    this.#serverRequests.clear();
    for (const session of this.sessions) session.childExited?.();
  }

  #announceRestart(): void {
    const lines = promisedListChanges(this.supervisor.initResult?.capabilities ?? {});
    for (const session of this.sessions) {
      session.childRestarted?.();
      for (const line of lines) session.notify(line);
    }
  }

  /** Stops the child for good. */
  async close(reason?: string): Promise<void> {
    await this.supervisor.close(reason);
  }
}
