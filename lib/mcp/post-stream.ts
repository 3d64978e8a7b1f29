/**
 * The HTTP response to one POST of the Streamable HTTP transport (MCP 2025-11-25, Transports §
 * "Sending Messages to the Server"): JSON when the answer comes first, else an SSE stream whose
 * events are logged for `Last-Event-ID` resumption (§ "Resumability and Redelivery").
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#sending-messages-to-the-server
 */
import type { Reply } from "../router/downstream.ts";
import { jsonResponse } from "./http.ts";
import type { Session } from "./sessions.ts";
import { formatEvent, SSE_HEADERS, type SseWriter, streamWhenLong } from "./sse.ts";

/** The reconnection delay advertised to clients in the priming event. */
export const SSE_RETRY_MS = 2000;

/** Where a PostStream gets the SSE connection it switches to (the McpService). */
export interface StreamSource {
  stream(session: Session): SseWriter;
}

/**
 * The HTTP response to one POST. It answers with JSON when the final message comes first,
 * and switches to an SSE stream as soon as the child sends anything else for the request,
 * or when the request runs longer than STREAM_AFTER_MS (so tunnels see bytes and keep-alives).
 */
export class PostStream implements Reply {
  readonly response: Promise<Response>;
  readonly streaming: boolean;
  #resolve!: (response: Response) => void;
  #resolved = false;
  #remaining: number;
  #parts: string[] = [];
  #writer: SseWriter | null = null;
  #streamId = 0;
  #seq = 0;
  /** Whether the last event was handed to a live connection. */
  #sent = false;
  #cancelSwitch: () => void = () => {};

  constructor(
    private readonly source: StreamSource,
    private readonly session: Session,
    mode: "json" | "sse" | "deferred",
    count: number,
    private readonly batch: boolean,
  ) {
    this.response = new Promise((resolve) => this.#resolve = resolve);
    this.#remaining = count;
    this.streaming = mode !== "json";
    if (mode === "sse") this.openSse();
    else if (mode === "deferred") this.#cancelSwitch = streamWhenLong(() => this.openSse());
  }

  /** A Reply for one request of a batch. */
  part(_index: number): Reply {
    return { streaming: this.streaming, send: (t) => this.send(t), end: (t) => this.end(t) };
  }

  send(text: string): void {
    if (!this.streaming || this.#remaining === 0) return;
    if (!this.#writer && !this.#resolved) this.openSse();
    this.#emit(text);
  }

  end(text: string): void {
    if (this.#remaining === 0) return;
    this.#remaining--;
    if (this.#streamId !== 0) {
      this.#emit(text);
      if (this.#remaining === 0) this.#finish();
      return;
    }
    this.#parts.push(text);
    if (this.#remaining > 0) return;
    this.#cancelSwitch();
    const body = this.batch ? `[${this.#parts.join(",")}]` : this.#parts[0];
    this.#resolved = true;
    this.#resolve(jsonResponse(body));
  }

  /** Switches to an SSE response (first message, or the request ran long). */
  openSse(): void {
    if (this.#streamId !== 0 || this.#resolved) return;
    this.#cancelSwitch();
    this.#streamId = this.session.nextStreamId();
    const writer = this.source.stream(this.session);
    this.#writer = writer;
    this.#resolved = true;
    this.#resolve(new Response(writer.body, { headers: SSE_HEADERS }));
    this.session.resumable.set(this.#streamId, this);
    if (this.session.protocolVersion >= "2025-11-25") {
      // The priming event: an id with empty data, so the client can resume with Last-Event-ID,
      // and how long to wait before reconnecting if the stream drops.
      writer.write(`id: ${this.#streamId}_0\nretry: ${SSE_RETRY_MS}\ndata: \n\n`);
    }
    const parts = this.#parts;
    this.#parts = [];
    for (const part of parts) this.#emit(part);
    if (this.#remaining === 0) this.#finish();
  }

  /** Continues the stream on a new connection after the client resumed it. */
  attach(writer: SseWriter): void {
    this.#writer?.close();
    this.#writer = writer;
  }

  #emit(text: string): void {
    const seq = ++this.#seq;
    const event = formatEvent(text, `${this.#streamId}_${seq}`);
    this.session.events.push(this.#streamId, seq, event);
    this.#sent = this.#writer?.write(event) ?? false;
  }

  #finish(): void {
    this.session.resumable.delete(this.#streamId);
    // Once the final answer went out on a live connection, nobody will resume this stream.
    if (this.#sent) this.session.events.dropStream(this.#streamId);
    this.#writer?.close();
  }
}
