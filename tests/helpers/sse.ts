/** Reads a `text/event-stream` response body event by event, as a raw client would. */

export interface SseEvent {
  event?: string;
  id?: string;
  data: string;
}

/** Parses the events of one SSE body (WHATWG HTML §9.2); comments (keep-alives) are skipped. */
export class SseReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next event, or null once the stream has ended (closed or broken). */
  async next(): Promise<SseEvent | null> {
    for (;;) {
      const end = this.#buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        const event = parseBlock(block);
        if (event) return event;
        continue;
      }
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await this.#reader.read();
      } catch {
        return null;
      }
      if (chunk.done) return null;
      this.#buffer += chunk.value;
    }
  }

  /** The next event named `name` (others are skipped), or null at the end. */
  async nextNamed(name: string): Promise<SseEvent | null> {
    for (;;) {
      const event = await this.next();
      if (!event || event.event === name) return event;
    }
  }

  /** Reads until the stream ends; true when it did. */
  async ended(): Promise<boolean> {
    while (await this.next()) { /* drain */ }
    return true;
  }

  cancel(): Promise<void> {
    return this.#reader.cancel().catch(() => {});
  }
}

function parseBlock(block: string): SseEvent | null {
  const event: SseEvent = { data: "" };
  let hasData = false;
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") {
      event.data = hasData ? `${event.data}\n${value}` : value;
      hasData = true;
    } else if (field === "event") event.event = value;
    else if (field === "id") event.id = value;
  }
  return hasData ? event : null;
}

/**
 * Reads from a raw connection until `pattern` matches what arrived, then stops reading: the
 * client that never reads the rest of its stream.
 */
export async function readUntil(conn: Deno.Conn, pattern: RegExp): Promise<RegExpExecArray> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(16 * 1024);
  let seen = "";
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error(`connection closed before ${pattern}: ${seen}`);
    seen += decoder.decode(buffer.subarray(0, n), { stream: true });
    const m = pattern.exec(seen);
    if (m) return m;
  }
}

/** The JSON-RPC messages of an SSE response body, as they arrive. */
export async function* sseMessages(res: Response): AsyncGenerator<Record<string, unknown>> {
  let buffer = "";
  for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").find((l) => l.startsWith("data: "));
      if (data) yield JSON.parse(data.slice(6));
    }
  }
}
