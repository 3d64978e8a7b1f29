/**
 * Replay of sent SSE events for `Last-Event-ID` resumption (MCP 2025-11-25, Transports §
 * "Resumability and Redelivery"; WHATWG HTML §9.2.4): each session keeps a bounded log of the
 * events it sent, and one budget bounds the bytes kept across all sessions, dropping the oldest
 * events anywhere when it is full.
 */

/** One sent event as kept for replay. */
interface Kept {
  stream: number;
  seq: number;
  text: string;
  at: number;
  /** Counted size: the event's length in UTF-16 code units (its bytes for ASCII JSON). */
  size: number;
  dropped: boolean;
}

/** Bytes of kept events across every session; the oldest event anywhere goes first. */
export class ReplayBudget {
  #queue: Kept[] = [];
  #head = 0;
  #dead = 0;
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes of events currently kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Counts a new event, then drops the oldest kept events while over the budget. */
  add(event: Kept): void {
    this.#queue.push(event);
    this.#bytes += event.size;
    while (this.#bytes > this.maxBytes && this.#head < this.#queue.length) {
      const oldest = this.#queue[this.#head++];
      if (oldest.dropped) this.#dead--;
      else this.#release(oldest);
    }
    this.#compact();
  }

  /** Stops counting an event its log no longer keeps. */
  release(event: Kept): void {
    if (event.dropped) return;
    this.#release(event);
    this.#dead++;
    this.#compact();
  }

  #release(event: Kept): void {
    event.dropped = true;
    event.text = "";
    this.#bytes -= event.size;
  }

  /** Forgets dropped entries once they are most of the queue, so it stays proportional. */
  #compact(): void {
    const length = this.#queue.length - this.#head;
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.#dead > 1024 && this.#dead * 2 > length) {
      this.#queue = this.#queue.slice(this.#head).filter((e) => !e.dropped);
      this.#head = 0;
      this.#dead = 0;
    }
  }
}

/** A session's sent events for replay, bounded in count, bytes and age, and by the budget. */
export class EventLog {
  #events: Kept[] = [];
  #bytes = 0;

  constructor(
    private readonly budget: ReplayBudget | null = null,
    private readonly maxEvents = 1000,
    private readonly maxBytes = 4 * 1024 * 1024,
    private readonly maxAgeMs = 5 * 60_000,
  ) {}

  push(stream: number, seq: number, text: string, now = Date.now()): void {
    const event: Kept = { stream, seq, text, at: now, size: text.length, dropped: false };
    this.#events.push(event);
    this.#bytes += event.size;
    this.budget?.add(event);
    this.trim(now);
  }

  /** Events of `stream` after `seq`, oldest first. */
  after(stream: number, seq: number): string[] {
    const out: string[] = [];
    for (const e of this.#events) {
      if (!e.dropped && e.stream === stream && e.seq > seq) out.push(e.text);
    }
    return out;
  }

  /** Lowest sequence number still held for `stream`, or null if it has none. */
  oldest(stream: number): number | null {
    for (const e of this.#events) if (!e.dropped && e.stream === stream) return e.seq;
    return null;
  }

  /** Drops what is over this log's limits, and what the budget dropped, oldest first. */
  trim(now = Date.now()): void {
    let drop = 0;
    const events = this.#events;
    while (
      drop < events.length &&
      (events[drop].dropped || events.length - drop > this.maxEvents ||
        this.#bytes > this.maxBytes || now - events[drop].at > this.maxAgeMs)
    ) {
      this.#forget(events[drop]);
      drop++;
    }
    if (drop > 0) events.splice(0, drop);
  }

  /** Drops every event of one stream (it finished and its client received it). */
  dropStream(stream: number): void {
    this.#events = this.#events.filter((e) => {
      if (e.stream !== stream) return true;
      this.#forget(e);
      return false;
    });
  }

  /** Drops everything (the session ended). */
  clear(): void {
    for (const e of this.#events) this.#forget(e);
    this.#events = [];
  }

  /** Events still held. */
  get length(): number {
    let n = 0;
    for (const e of this.#events) if (!e.dropped) n++;
    return n;
  }

  #forget(event: Kept): void {
    this.#bytes -= event.size;
    this.budget?.release(event);
    event.dropped = true;
  }
}

/** Parses an event id "<stream>_<seq>" as this proxy writes them. */
export function parseEventId(text: string | null): { stream: number; seq: number } | null {
  if (!text) return null;
  const m = /^(\d{1,9})_(\d{1,12})$/.exec(text);
  return m ? { stream: Number(m[1]), seq: Number(m[2]) } : null;
}
