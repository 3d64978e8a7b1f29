/**
 * One sessionless request in flight at a child, across the HTTP exchanges of its rounds. It is
 * its own downstream for the multiplexer (capabilities and log level come from the request's
 * `_meta`, not from a session) and the reply the child's answer goes to. A server-to-client
 * request the child sends meanwhile becomes an input request of an `InputRequiredResult`
 * (requests that arrive within a short window go out together) while the child's request stays
 * pending; the client's retry answers it, and the call goes on to the final result or the next
 * round.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/mrtr
 */
import type { Identity } from "../../router/router.ts";
import type { Reply } from "../../router/downstream.ts";
import type { ServerConfig } from "../../config/schema.ts";
import {
  ErrorCode,
  isRecord,
  type JsonRpcId,
  logRank,
  requiredClientCapability,
} from "../../jsonrpc.ts";
import type { Exchange } from "./exchange.ts";
import { SessionlessDownstream } from "./downstream.ts";
import { INPUT_KEY_META, ModernError, MRTR_METHODS } from "./protocol.ts";
import { modernError, type ResultShape, stamp, statusOf, withServerInfo } from "./translate.ts";
import type { ClientCapabilities, ModernRequest } from "./validate.ts";

/** How long input requests are gathered before an `InputRequiredResult` goes out. */
export const INPUT_WINDOW_MS = 20;

/** What a call needs from the proxy around it. */
export interface CallOptions {
  /** The first request: its id and parameters are what the child knows. */
  request: ModernRequest;
  /** The server as routed: a per-session server serves sessionless requests per identity. */
  server: ServerConfig;
  identity: Identity;
  shape: ResultShape;
  /**
   * Reshapes the child's result before it is translated: the merged endpoint's read answers
   * name the URIs its clients were given.
   */
  rewrite?(result: Record<string, unknown>): void;
  /** Answers a request the child sent (by the id the multiplexer gave it). */
  answerChild(message: Record<string, unknown>): void;
  /** Tells the child the request was cancelled. */
  cancel(): void;
  /** Keeps the call waiting for a retry and returns the `requestState` naming this round. */
  park(call: ModernCall): Promise<string>;
  /** The call no longer waits for a retry (finished, abandoned or expired). */
  unpark(call: ModernCall): void;
}

/** A server-to-client request of the child, waiting for the client's input response. */
interface Asked {
  childId: JsonRpcId;
  method: string;
  params: Record<string, unknown>;
}

/** A sessionless request as a multiplexer downstream and reply. */
export class ModernCall extends SessionlessDownstream implements Reply {
  readonly streaming = true;
  /** The multiplexer offers every server-to-client request; `#serverRequest` decides. */
  readonly capabilities = { sampling: true, elicitation: true, roots: true };
  /** The round the client's next retry must name (its `requestState`). */
  round = 0;
  #exchange: Exchange | null;
  #asked = new Map<string, Asked>();
  /** Input responses of the current exchange already delivered to the child. */
  #used = new Set<string>();
  #nextKey = 1;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** The child's final answer when it came while no exchange was attached. */
  #final: Record<string, unknown> | null = null;
  #done = false;
  /** Client capabilities a child's request needed and the client had not declared. */
  #refused: Record<string, Record<string, never>> | null = null;

  constructor(readonly options: CallOptions, exchange: Exchange) {
    super("modern", options.server, options.identity);
    this.#exchange = exchange;
    this.logLevel = levelOf(exchange.request);
  }

  get done(): boolean {
    return this.#done;
  }

  /** How many of the child's requests wait for the client's input responses. */
  get asking(): number {
    return this.#asked.size;
  }

  /** Waiting for the client's retry, with no exchange attached. */
  get parked(): boolean {
    return !this.#done && this.#exchange === null;
  }

  /** Between rounds the call waits on its client, not on the child (`Reply.waiting`). */
  get waiting(): boolean {
    return this.parked;
  }

  /** The retry of a parked call: its input responses go to the child, then the call goes on. */
  resume(exchange: Exchange): void {
    this.#exchange = exchange;
    this.#used.clear();
    this.logLevel = levelOf(exchange.request);
    if (this.#final !== null) {
      const { body, status } = this.#translate(this.#final, exchange.request.id);
      this.#finish(exchange, body, status);
      return;
    }
    for (const key of [...this.#asked.keys()]) {
      if (!this.#answerFromExchange(key)) return;
    }
    // Anything still unanswered is asked again at once.
    if (this.#asked.size > 0) this.#scheduleFlush(0);
  }

  /** Only a child giving up on one of its requests reaches a call this way. */
  notify(text: string): void {
    const message = parse(text);
    if (message?.method !== "notifications/cancelled" || !isRecord(message.params)) return;
    for (const [key, asked] of this.#asked) {
      if (asked.childId === message.params.requestId) this.#asked.delete(key);
    }
  }

  /** A message the child sent about this request. */
  send(text: string): void {
    if (this.#done) return;
    const message = parse(text);
    if (!message || typeof message.method !== "string") return;
    if (message.id !== undefined) {
      this.#serverRequest(message);
      return;
    }
    if (this.#exchange && this.#related(message)) this.#exchange.notify(text);
  }

  /** The final answer as text (the proxy's own errors). */
  end(text: string): void {
    this.endMessage(parse(text) ?? {});
  }

  /** The child's final answer, translated. */
  endMessage(message: Record<string, unknown>): void {
    if (this.#done) return;
    const exchange = this.#exchange;
    if (!exchange) {
      this.#final = message;
      return;
    }
    const { body, status } = this.#translate(message, exchange.request.id);
    this.#finish(exchange, body, status);
  }

  /** The client went away, or will not come back: the child stops working on the request. */
  abandon(reason = "the client went away"): void {
    if (this.#done) return;
    this.#refuseAsked(reason);
    this.options.cancel();
    const exchange = this.#exchange;
    if (exchange && !exchange.finished) {
      const id = exchange.request.id;
      exchange.finish(JSON.stringify(errorTo(id, ErrorCode.RequestCancelled, { message: reason })));
    }
    this.#close();
  }

  #finish(exchange: Exchange, body: string, status: number): void {
    exchange.finish(body, status);
    this.#close();
  }

  #close(): void {
    this.#done = true;
    clearTimeout(this.#flushTimer);
    this.#exchange = null;
    this.options.unpark(this);
  }

  /** Only progress for this request and log messages it opted in to (server/utilities/logging). */
  #related(message: Record<string, unknown>): boolean {
    const params = isRecord(message.params) ? message.params : {};
    if (message.method === "notifications/progress") return true;
    if (message.method === "notifications/message") return logRank(params.level) >= this.logLevel;
    return false;
  }

  /**
   * A server-to-client request during this call. One whose capability the client did not
   * declare is refused with -32021 (basic/index "Per-request protocol fields"); during a method
   * that cannot carry input requests it is refused too; otherwise it becomes an input request.
   */
  #serverRequest(message: Record<string, unknown>): void {
    const method = message.method as string;
    const id = message.id as JsonRpcId;
    const capability = requiredClientCapability(method);
    const declared: ClientCapabilities = this.#exchange?.request.capabilities ??
      this.options.request.capabilities;
    if (capability && !isRecord(declared[capability])) {
      this.#refused = { ...this.#refused, [capability]: {} };
      this.options.answerChild(errorTo(id, ModernError.MissingRequiredClientCapability, {
        message: `the client did not declare the ${capability} capability on this request`,
        data: { requiredCapabilities: { [capability]: {} } },
      }));
      return;
    }
    if (!capability || !MRTR_METHODS.has(this.options.request.method)) {
      this.options.answerChild(errorTo(id, ErrorCode.MethodNotFound, {
        message:
          `${method} not relayed: ${this.options.request.method} cannot carry input requests`,
      }));
      return;
    }
    const { key, params } = this.#keyed(message.params);
    this.#asked.set(key, { childId: id, method, params });
    if (this.#answerFromExchange(key) && this.#asked.has(key)) this.#scheduleFlush(INPUT_WINDOW_MS);
  }

  /** The input-request key: the one the child suggests in `_meta` when usable, else our own. */
  #keyed(raw: unknown): { key: string; params: Record<string, unknown> } {
    const params = isRecord(raw) ? { ...raw } : {};
    let suggested: unknown;
    if (isRecord(params._meta) && INPUT_KEY_META in params._meta) {
      const { [INPUT_KEY_META]: hint, ...meta } = params._meta;
      suggested = hint;
      if (Object.keys(meta).length > 0) params._meta = meta;
      else delete params._meta;
    }
    const usable = typeof suggested === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(suggested) &&
      !this.#asked.has(suggested);
    let key = usable ? suggested as string : `input-${this.#nextKey++}`;
    while (this.#asked.has(key)) key = `input-${this.#nextKey++}`;
    return { key, params };
  }

  /**
   * Answers an asked request from the current exchange's `inputResponses` when it holds one for
   * its key. False when the response was malformed and the call failed.
   */
  #answerFromExchange(key: string): boolean {
    const exchange = this.#exchange;
    const asked = this.#asked.get(key);
    if (!exchange || !asked || this.#used.has(key)) return true;
    const responses = exchange.request.params.inputResponses;
    if (!isRecord(responses) || !(key in responses)) return true;
    const value = responses[key];
    if (!validResponse(asked.method, value)) {
      this.#refuseAsked("the client's input response was malformed");
      this.options.cancel();
      const error = errorTo(exchange.request.id, ErrorCode.InvalidParams, {
        message: `inputResponses["${key}"] is not a valid result of ${asked.method}`,
      });
      this.#finish(exchange, JSON.stringify(error), 200);
      return false;
    }
    this.#used.add(key);
    this.#asked.delete(key);
    this.options.answerChild({ jsonrpc: "2.0", id: asked.childId, result: value });
    return true;
  }

  #scheduleFlush(delayMs: number): void {
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flush().catch(() => this.abandon("the input request could not be sent"));
    }, delayMs);
  }

  /** Ends the current exchange with an `InputRequiredResult` asking what is still unanswered. */
  async #flush(): Promise<void> {
    const exchange = this.#exchange;
    if (!exchange || exchange.finished || this.#done || this.#asked.size === 0) return;
    this.round++;
    const requestState = await this.options.park(this);
    if (exchange.finished || this.#exchange !== exchange || this.#done) return;
    const inputRequests: Record<string, unknown> = {};
    for (const [key, asked] of this.#asked) {
      inputRequests[key] = { method: asked.method, params: asked.params };
    }
    const result = withServerInfo(
      { resultType: "input_required", inputRequests, requestState },
      this.options.shape.serverInfo,
    );
    this.#exchange = null;
    exchange.finish(JSON.stringify({ jsonrpc: "2.0", id: exchange.request.id, result }));
  }

  /** Answers every request the child still waits on with an error. */
  #refuseAsked(reason: string): void {
    for (const asked of this.#asked.values()) {
      this.options.answerChild(
        errorTo(asked.childId, ErrorCode.InternalError, { message: reason }),
      );
    }
    this.#asked.clear();
  }

  #translate(message: Record<string, unknown>, id: JsonRpcId) {
    const { method, params } = this.options.request;
    const failed = isRecord(message.error) || isToolError(message.result);
    if (this.#refused && failed) {
      // The child needed a capability the client lacks and could not do without it.
      return out(id, method, {
        code: ModernError.MissingRequiredClientCapability,
        message: `${method} needs client capabilities this request did not declare`,
        data: { requiredCapabilities: this.#refused },
      });
    }
    if (isRecord(message.error)) {
      return out(id, method, modernError(method, message.error, params));
    }
    if (isRecord(message.result)) {
      // The message is this call's own (parsed from the child's line): stamped in place.
      this.options.rewrite?.(message.result);
      const result = stamp(message.result, method, this.options.shape);
      return { body: JSON.stringify({ jsonrpc: "2.0", id, result }), status: 200 };
    }
    return out(id, method, {
      code: ErrorCode.InternalError,
      message: "the server sent an invalid answer",
    });
  }
}

function levelOf(request: ModernRequest): number {
  return request.logLevel ?? Number.POSITIVE_INFINITY;
}

/** Whether a client's input response has the shape of the asked method's result (schema). */
function validResponse(method: string, value: unknown): boolean {
  if (!isRecord(value)) return false;
  switch (method) {
    case "elicitation/create":
      return value.action === "accept" || value.action === "decline" || value.action === "cancel";
    case "sampling/createMessage":
      return isRecord(value.content) || Array.isArray(value.content);
    case "roots/list":
      return Array.isArray(value.roots);
    default:
      return false;
  }
}

function errorTo(
  id: JsonRpcId,
  code: number,
  error: { message: string; data?: unknown },
): Record<string, unknown> {
  return { jsonrpc: "2.0", id, error: { code, ...error } };
}

function out(id: JsonRpcId, method: string, error: Record<string, unknown>) {
  return {
    body: JSON.stringify({ jsonrpc: "2.0", id, error }),
    status: statusOf(error.code, method),
  };
}

function isToolError(result: unknown): boolean {
  return isRecord(result) && result.isError === true;
}

function parse(text: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(text);
    return isRecord(value) ? value : null;
  } catch {
    return null;
  }
}
