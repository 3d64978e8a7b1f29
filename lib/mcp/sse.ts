/**
 * Server-sent event streams: one writer per HTTP response, a per-session event log for
 * resumption (`Last-Event-ID`), and one ticker that keeps idle streams alive.
 */

const encoder = new TextEncoder();

export const SSE_HEADERS: Record<string, string> = {
  "content-type": "text/event-stream",
  // no-transform also turns off Deno.serve's automatic compression, which would buffer events.
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

/** Formats one SSE event; JSON text never holds a raw newline, so one data line suffices. */
export function formatEvent(data: string, id?: string, event?: string): string {
  let out = "";
  if (id !== undefined) out += `id: ${id}\n`;
  if (event !== undefined) out += `event: ${event}\n`;
  return out + `data: ${data}\n\n`;
}

/** One open `text/event-stream` HTTP response body. */
export class SseWriter {
  readonly body: ReadableStream<Uint8Array>;
  closed = false;
  lastWrite = Date.now();
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #onClose: Array<() => void> = [];

  constructor(private readonly registry: SseRegistry) {
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => this.#closed(),
    });
    registry.add(this);
  }

  /** Registers a callback for when the stream ends, from either side. */
  onClose(callback: () => void): void {
    if (this.closed) callback();
    else this.#onClose.push(callback);
  }

  write(text: string): boolean {
    if (this.closed) return false;
    try {
      this.#controller.enqueue(encoder.encode(text));
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

interface LoggedEvent {
  stream: number;
  seq: number;
  text: string;
  at: number;
}

/** A bounded log of the events sent on a session's streams, for `Last-Event-ID` replay. */
export class EventLog {
  #events: LoggedEvent[] = [];
  #bytes = 0;

  constructor(
    private readonly maxEvents = 1000,
    private readonly maxBytes = 4 * 1024 * 1024,
    private readonly maxAgeMs = 5 * 60_000,
  ) {}

  push(stream: number, seq: number, text: string, now = Date.now()): void {
    this.#events.push({ stream, seq, text, at: now });
    this.#bytes += text.length;
    this.trim(now);
  }

  /** Events of `stream` after `seq`, oldest first. */
  after(stream: number, seq: number): string[] {
    const out: string[] = [];
    for (const e of this.#events) if (e.stream === stream && e.seq > seq) out.push(e.text);
    return out;
  }

  /** Lowest sequence number still held for `stream`, or null if it has none. */
  oldest(stream: number): number | null {
    for (const e of this.#events) if (e.stream === stream) return e.seq;
    return null;
  }

  trim(now = Date.now()): void {
    let drop = 0;
    while (
      drop < this.#events.length &&
      (this.#events.length - drop > this.maxEvents || this.#bytes > this.maxBytes ||
        now - this.#events[drop].at > this.maxAgeMs)
    ) {
      this.#bytes -= this.#events[drop].text.length;
      drop++;
    }
    if (drop > 0) this.#events.splice(0, drop);
  }

  get length(): number {
    return this.#events.length;
  }
}

/** Parses an event id "<stream>_<seq>" as this proxy writes them. */
export function parseEventId(text: string | null): { stream: number; seq: number } | null {
  if (!text) return null;
  const m = /^(\d{1,9})_(\d{1,12})$/.exec(text);
  return m ? { stream: Number(m[1]), seq: Number(m[2]) } : null;
}
