/**
 * One HTTP request/response of the sessionless lane: answered with JSON, or with an SSE stream
 * scoped to the request once something related to it is sent first (or the answer takes long).
 * The stream has no event ids and cannot be resumed; the client closing it is reported once.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#sending-messages
 */
import { jsonResponse } from "../http.ts";
import { formatEvent, SSE_HEADERS, type SseRegistry, SseWriter, streamWhenLong } from "../sse.ts";
import type { ModernRequest } from "./validate.ts";

/** The HTTP side of one request. */
export class Exchange {
  readonly response: Promise<Response>;
  #resolve!: (response: Response) => void;
  #writer: SseWriter | null = null;
  #finished = false;
  #cancelSwitch: () => void = () => {};
  #onGone: () => void = () => {};

  /**
   * @param request the validated request this exchange answers
   * @param sse whether the client accepts `text/event-stream`
   */
  constructor(
    readonly request: ModernRequest,
    readonly sse: boolean,
    private readonly registry: SseRegistry,
  ) {
    this.response = new Promise((resolve) => this.#resolve = resolve);
    if (sse) this.#cancelSwitch = streamWhenLong(() => this.#openSse());
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
