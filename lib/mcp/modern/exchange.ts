/**
 * One HTTP request/response of the sessionless lane: answered with JSON, or with an SSE stream
 * scoped to the request once something related to it is sent first (or the answer takes long).
 * The stream has no event ids and cannot be resumed; the client closing it is reported once.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#sending-messages
 */
import { jsonResponse } from "../http.ts";
import { formatEvent, SSE_HEADERS, type SseRegistry, SseWriter, STREAM_AFTER_MS } from "../sse.ts";
import type { ModernRequest } from "./validate.ts";
import { errorBody, ErrorCode, type JsonRpcId } from "../../jsonrpc.ts";

const CANCELLED = (id: JsonRpcId) => errorBody(id, ErrorCode.RequestCancelled, "request cancelled");

/**
 * How long a request runs before the client's disconnect is watched for. Quick answers never
 * touch the request's AbortSignal, which costs an exception object per request in Deno.serve.
 */
export const WATCH_AFTER_MS = 1000;

/** The HTTP side of one request. */
export class Exchange {
  readonly response: Promise<Response>;
  #resolve!: (response: Response) => void;
  #writer: SseWriter | null = null;
  #finished = false;
  /** The one timer of a quick request: watch for the client's disconnect, then switch to SSE. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #onGone: () => void = () => {};
  #onDone: () => void = () => {};

  /**
   * @param request the validated request this exchange answers
   * @param sse whether the client accepts `text/event-stream`
   */
  constructor(
    readonly request: ModernRequest,
    readonly sse: boolean,
    private readonly registry: SseRegistry,
    /** The HTTP request's AbortSignal, read only once the request has run a while. */
    private readonly signal?: () => AbortSignal,
    /** When the disconnect is watched and when a long request becomes a stream (tests shorten). */
    private readonly timing = { watchMs: WATCH_AFTER_MS, streamMs: STREAM_AFTER_MS },
  ) {
    this.response = new Promise((resolve) => this.#resolve = resolve);
    if (signal || sse) this.#arm(signal ? timing.watchMs : timing.streamMs, () => this.#runLong());
  }

  #arm(ms: number, then: () => void): void {
    this.#timer = setTimeout(then, ms);
    Deno.unrefTimer(this.#timer);
  }

  /**
   * The request has run WATCH_AFTER_MS: the client's disconnect is watched from now on, and a
   * client that takes SSE gets a stream once STREAM_AFTER_MS have passed (so tunnels see bytes).
   */
  #runLong(): void {
    this.#timer = undefined;
    if (this.#finished) return;
    if (this.signal) {
      const s = this.signal();
      if (s.aborted) {
        this.gone();
        return;
      }
      s.addEventListener("abort", () => this.gone(), { once: true });
    }
    if (this.sse && !this.#writer) {
      const { watchMs, streamMs } = this.timing;
      this.#arm(Math.max(0, streamMs - (this.signal ? watchMs : 0)), () => this.#openSse());
    }
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Called once if the client goes away before the answer. */
  onGone(callback: () => void): void {
    this.#onGone = callback;
  }

  /** Called once when the exchange ends, answered or not. */
  onDone(callback: () => void): void {
    this.#onDone = callback;
  }

  /**
   * The client closed the connection (its request's AbortSignal fired). A JSON answer still
   * pending is settled with -32800, so the HTTP handler ends (a client still reading gets it).
   */
  gone(): void {
    if (!this.#end()) return;
    if (!this.#writer) this.#resolve(jsonResponse(CANCELLED(this.request.id)));
    this.#onGone();
  }

  /**
   * The client cancelled the request by a `notifications/cancelled` POST: it is answered with
   * -32800 (as a 2025 session's cancelled request is), then treated as gone.
   */
  cancel(): void {
    if (this.#finished) return;
    this.finish(CANCELLED(this.request.id));
    this.#onGone();
  }

  /** The final message; nothing follows it. */
  finish(body: string, status = 200): void {
    if (!this.#end()) return;
    if (this.#writer) {
      this.#writer.write(formatEvent(body));
      this.#writer.close();
      return;
    }
    this.#resolve(jsonResponse(body, status));
  }

  /** Answers with `response` (a refusal before anything reached the child). */
  refuse(response: Response): void {
    if (this.#end()) this.#resolve(response);
  }

  /** A notification related to the request; dropped when the client takes no stream. */
  notify(text: string): void {
    if (this.#finished || !this.sse) return;
    this.#openSse();
    this.#writer?.write(formatEvent(text));
  }

  /** Marks the exchange finished; false when it already was. */
  #end(): boolean {
    if (this.#finished) return false;
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#onDone();
    return true;
  }

  #openSse(): void {
    if (this.#writer || this.#finished) return;
    clearTimeout(this.#timer);
    const writer = new SseWriter(this.registry);
    this.#writer = writer;
    writer.onClose(() => this.gone());
    this.#resolve(new Response(writer.body, { headers: SSE_HEADERS }));
  }
}
