/**
 * One HTTP request/response of the sessionless lane: answered with JSON, or with an SSE stream
 * scoped to the request once something related to it is sent first (or the answer takes long).
 * The stream has no event ids and cannot be resumed; the client closing it is reported once.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#sending-messages
 */
import { jsonResponse } from "../http.ts";
import { formatEvent, SSE_HEADERS, type SseRegistry, SseWriter, streamWhenLong } from "../sse.ts";
import type { ModernRequest } from "./validate.ts";

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
  #cancelSwitch: () => void = () => {};
  #cancelWatch: () => void = () => {};
  #onGone: () => void = () => {};

  /**
   * @param request the validated request this exchange answers
   * @param sse whether the client accepts `text/event-stream`
   */
  constructor(
    readonly request: ModernRequest,
    readonly sse: boolean,
    private readonly registry: SseRegistry,
    /** The HTTP request's AbortSignal, read only once the request has run a while. */
    signal?: () => AbortSignal,
  ) {
    this.response = new Promise((resolve) => this.#resolve = resolve);
    if (sse) this.#cancelSwitch = streamWhenLong(() => this.#openSse());
    if (signal) this.#watch(signal);
  }

  #watch(signal: () => AbortSignal): void {
    const timer = setTimeout(() => {
      if (this.#finished) return;
      const s = signal();
      if (s.aborted) this.gone();
      else s.addEventListener("abort", () => this.gone(), { once: true });
    }, WATCH_AFTER_MS);
    Deno.unrefTimer(timer);
    this.#cancelWatch = () => clearTimeout(timer);
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Called once if the client goes away before the answer. */
  onGone(callback: () => void): void {
    this.#onGone = callback;
  }

  /** The client closed the connection (its request's AbortSignal fired). */
  gone(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#cancelSwitch();
    this.#cancelWatch();
    this.#onGone();
  }

  /** A notification related to the request; dropped when the client takes no stream. */
  notify(text: string): void {
    if (this.#finished || !this.sse) return;
    this.#openSse();
    this.#writer?.write(formatEvent(text));
  }

  /** The final message; nothing follows it. */
  finish(body: string, status = 200): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#cancelSwitch();
    this.#cancelWatch();
    if (this.#writer) {
      this.#writer.write(formatEvent(body));
      this.#writer.close();
      return;
    }
    this.#resolve(jsonResponse(body, status));
  }

  #openSse(): void {
    if (this.#writer || this.#finished) return;
    this.#cancelSwitch();
    const writer = new SseWriter(this.registry);
    this.#writer = writer;
    writer.onClose(() => this.gone());
    this.#resolve(new Response(writer.body, { headers: SSE_HEADERS }));
  }
}
