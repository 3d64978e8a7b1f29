/**
 * One sessionless request in flight at a child. It is its own downstream for the multiplexer
 * (capabilities and log level come from the request's `_meta`, not from a session) and the reply
 * the child's answer goes to: JSON by default, an SSE stream scoped to the request once the child
 * sends a notification related to it (progress, or a log message at or above the requested
 * level). Server-to-client requests the child sends meanwhile are answered to the child here.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#receiving-messages
 */
import type { Identity, RoutedSession } from "../../router/router.ts";
import type { Reply } from "../../router/mux.ts";
import type { ServerConfig } from "../../config/schema.ts";
import {
  ErrorCode,
  isRecord,
  type JsonRpcId,
  logRank,
  requiredClientCapability,
} from "../../jsonrpc.ts";
import { jsonResponse } from "../http.ts";
import { formatEvent, SSE_HEADERS, type SseRegistry, SseWriter } from "../sse.ts";
import { ModernError, MRTR_METHODS } from "./protocol.ts";
import { modernError, modernResult, type ResultShape, statusOf } from "./translate.ts";
import type { ModernRequest } from "./validate.ts";

/** How long a request may answer nothing before its response becomes an SSE stream. */
export const STREAM_AFTER_MS = 10_000;

let nextCall = 1;

/** What a call needs from the proxy around it. */
export interface CallOptions {
  request: ModernRequest;
  /** The server as routed: a per-session server serves sessionless requests per identity. */
  server: ServerConfig;
  identity: Identity;
  shape: ResultShape;
  /** The client accepts `text/event-stream`. */
  sse: boolean;
  registry: SseRegistry;
  /** Answers a request the child sent (by the id the multiplexer gave it). */
  answerChild(message: Record<string, unknown>): void;
  /** Tells the child the request was cancelled (the client went away). */
  cancel(): void;
}

/** A sessionless request as a multiplexer downstream and reply. */
export class ModernCall implements RoutedSession, Reply {
  readonly id = `modern-${nextCall++}`;
  readonly streaming = true;
  /** The multiplexer offers every server-to-client request; `#serverRequest` decides. */
  readonly capabilities = { sampling: true, elicitation: true, roots: true };
  logLevel: number;
  readonly response: Promise<Response>;
  #resolve!: (response: Response) => void;
  #writer: SseWriter | null = null;
  #done = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Client capabilities a child's request needed and the client had not declared. */
  #refused: Record<string, Record<string, never>> | null = null;

  constructor(readonly options: CallOptions) {
    this.logLevel = options.request.logLevel ?? Number.POSITIVE_INFINITY;
    this.response = new Promise((resolve) => this.#resolve = resolve);
    if (options.sse) this.#timer = setTimeout(() => this.#openSse(), STREAM_AFTER_MS);
  }

  get server(): ServerConfig {
    return this.options.server;
  }

  get identity(): Identity {
    return this.options.identity;
  }

  get identityKey(): string {
    return this.options.identity.key;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Nothing session-wide reaches a single request. */
  notify(_text: string): void {}

  /** A message the child sent about this request. */
  send(text: string): void {
    if (this.#done) return;
    const message = parse(text);
    if (!message || typeof message.method !== "string") return;
    if (message.id !== undefined) {
      this.#serverRequest(message);
      return;
    }
    if (!this.#related(message)) return;
    if (!this.options.sse) return;
    this.#openSse();
    this.#writer?.write(formatEvent(text));
  }

  /** The child's final answer, translated. */
  end(text: string): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    const { body, status } = this.#translate(text);
    if (this.#writer) {
      this.#writer.write(formatEvent(body));
      this.#writer.close();
      return;
    }
    this.#resolve(jsonResponse(body, status));
  }

  /** The client went away before the answer: the child stops working on it. */
  abandon(): void {
    if (this.#done) return;
    this.options.cancel();
    this.end(JSON.stringify({
      jsonrpc: "2.0",
      id: this.options.request.id,
      error: { code: ErrorCode.RequestCancelled, message: "request cancelled" },
    }));
  }

  /** Only progress for this request and log messages the request opted in to (logging). */
  #related(message: Record<string, unknown>): boolean {
    const params = isRecord(message.params) ? message.params : {};
    if (message.method === "notifications/progress") return true;
    if (message.method === "notifications/message") return logRank(params.level) >= this.logLevel;
    return false;
  }

  #openSse(): void {
    if (this.#writer || this.#done) return;
    clearTimeout(this.#timer);
    const writer = new SseWriter(this.options.registry);
    this.#writer = writer;
    writer.onClose(() => {
      if (!this.#done) this.abandon();
    });
    this.#resolve(new Response(writer.body, { headers: SSE_HEADERS }));
  }

  /**
   * A server-to-client request during this call. One whose capability the client did not
   * declare is refused with -32021 (basic/index "Per-request protocol fields"); the others are
   * refused too until they can travel as input requests of the result.
   */
  #serverRequest(message: Record<string, unknown>): void {
    const method = message.method as string;
    const capability = requiredClientCapability(method);
    const declared = this.options.request.capabilities;
    let error: Record<string, unknown>;
    if (capability && !isRecord(declared[capability])) {
      this.#refused = { ...this.#refused, [capability]: {} };
      error = {
        code: ModernError.MissingRequiredClientCapability,
        message: `the client did not declare the ${capability} capability on this request`,
        data: { requiredCapabilities: { [capability]: {} } },
      };
    } else {
      const what = MRTR_METHODS.has(this.options.request.method)
        ? "input requests are not relayed to sessionless clients"
        : `${this.options.request.method} cannot carry input requests`;
      error = { code: ErrorCode.MethodNotFound, message: `${method} not relayed: ${what}` };
    }
    this.options.answerChild({ jsonrpc: "2.0", id: message.id as JsonRpcId, error });
  }

  #translate(text: string): { body: string; status: number } {
    const { id, method, params } = this.options.request;
    const message = parse(text);
    const failed = !message || isRecord(message.error) || isToolError(message.result);
    if (this.#refused && failed) {
      // The child needed a capability the client lacks and could not do without it.
      return errorOut(id, method, {
        code: ModernError.MissingRequiredClientCapability,
        message: `${method} needs client capabilities this request did not declare`,
        data: { requiredCapabilities: this.#refused },
      });
    }
    if (message && isRecord(message.error)) {
      return errorOut(id, method, modernError(method, message.error, params));
    }
    if (message && isRecord(message.result)) {
      const result = modernResult(method, message.result, this.options.shape);
      return { body: JSON.stringify({ jsonrpc: "2.0", id, result }), status: 200 };
    }
    return errorOut(id, method, {
      code: ErrorCode.InternalError,
      message: "the server sent an invalid answer",
    });
  }
}

function errorOut(
  id: JsonRpcId,
  method: string,
  error: Record<string, unknown>,
): { body: string; status: number } {
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
