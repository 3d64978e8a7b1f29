/**
 * Server-sent event streams: one writer per HTTP response, bounded in the bytes it queues for a
 * client that does not read, and one registry whose ticker keeps idle streams alive.
 */

import { Deadlines } from "./deadlines.ts";

const encoder = new TextEncoder();

export const SSE_HEADERS: Record<string, string> = {
  "content-type": "text/event-stream",
  // no-transform also turns off Deno.serve's automatic compression, which would buffer events.
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

/**
 * How long a request may go unanswered before its response becomes an SSE stream, in both
 * protocol eras: tunnels and proxies end connections that stay silent, and a stream lets the
 * keep-alives through. A fixed limit, documented in docs/endpoints.md.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#sending-messages-to-the-server
 */
export const STREAM_AFTER_MS = 10_000;

/** The responses waiting for STREAM_AFTER_MS, on one timer. */
const longResponses = new Deadlines(STREAM_AFTER_MS);

/**
 * Calls `open` once a response has waited {@link STREAM_AFTER_MS} for its answer; the returned
 * function cancels (call it when the response is decided). The timer never keeps the process up.
 */
export function streamWhenLong(open: () => void): () => void {
  return longResponses.add(open);
}

/** Formats one SSE event; JSON text never holds a raw newline, so one data line suffices. */
export function formatEvent(data: string, id?: string, event?: string): string {
  let out = "";
  if (id !== undefined) out += `id: ${id}\n`;
  if (event !== undefined) out += `event: ${event}\n`;
  return out + `data: ${data}\n\n`;
}

/**
 * One open `text/event-stream` HTTP response body (WHATWG HTML §9.2). What the client has not
 * read yet stays queued; when a write would queue more than the registry's `maxQueuedBytes`,
 * the stream is ended with an error instead, which drops the queue and resets the response,
 * and `onOverflow` is told.
 */
export class SseWriter {
  readonly body: ReadableStream<Uint8Array>;
  closed = false;
  /** True when the stream was ended because its client did not read it. */
  overflowed = false;
  lastWrite = Date.now();
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #onClose: Array<() => void> = [];

  constructor(
    private readonly registry: SseRegistry,
    private readonly onOverflow?: (queuedBytes: number) => void,
  ) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        cancel: () => this.#closed(),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: registry.maxQueuedBytes }),
    );
    registry.add(this);
  }

  /** Bytes written but not yet taken by the HTTP server (what the client has not read). */
  get queuedBytes(): number {
    return this.closed ? 0 : this.registry.maxQueuedBytes - (this.#controller.desiredSize ?? 0);
  }

  /** Registers a callback for when the stream ends, from either side. */
  onClose(callback: () => void): void {
    if (this.closed) callback();
    else this.#onClose.push(callback);
  }

  write(text: string): boolean {
    if (this.closed) return false;
    const bytes = encoder.encode(text);
    const queued = this.queuedBytes;
    if (queued + bytes.length > this.registry.maxQueuedBytes) {
      this.#overflow(queued + bytes.length);
      return false;
    }
    try {
      this.#controller.enqueue(bytes);
      this.lastWrite = Date.now();
      return true;
    } catch {
      this.#closed();
      return false;
    }
  }

  close(): void {
    if (this.closed) return;
    try {
      this.#controller.close();
    } catch {
      // Already closed by the client.
    }
    this.#closed();
  }

  #overflow(queuedBytes: number): void {
    this.overflowed = true;
    try {
      // error(), unlike close(), discards what is queued.
      this.#controller.error(new Error("the client is not reading the stream"));
    } catch {
      // Already closed.
    }
    // The owner hears of it first, so it can tell an overflow from a client that went away.
    this.onOverflow?.(queuedBytes);
    this.#closed();
  }

  #closed(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry.delete(this);
    for (const callback of this.#onClose.splice(0)) callback();
  }
}

/** Every open SSE writer, so one timer can send keep-alive comments to the idle ones. */
export class SseRegistry {
  #writers = new Set<SseWriter>();

  /** @param maxQueuedBytes what one stream may hold for a client that is not reading it */
  constructor(readonly maxQueuedBytes = 32 * 1024 * 1024) {}

  add(writer: SseWriter): void {
    this.#writers.add(writer);
  }

  delete(writer: SseWriter): void {
    this.#writers.delete(writer);
  }

  get size(): number {
    return this.#writers.size;
  }

  /** Sends `: keepalive` to each stream idle for at least `idleMs`, so tunnels keep it open. */
  keepAlive(now: number, idleMs: number): void {
    for (const writer of this.#writers) {
      if (now - writer.lastWrite >= idleMs) writer.write(": keepalive\n\n");
    }
  }

  closeAll(): void {
    for (const writer of [...this.#writers]) writer.close();
  }
}
