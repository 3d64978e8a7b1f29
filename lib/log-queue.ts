/**
 * An asynchronous, bounded queue in front of a log output. A synchronous write to a pipe that
 * nobody reads blocks the whole process (every request, `/healthz` included); here a write
 * only appends to the queue, one writer task drains it, and when the queue holds `maxBytes` the
 * line is dropped and counted. A count of the lines dropped since the last report is queued as a
 * line of its own (past the bound: it is short and never more than one) as soon as the output has
 * taken everything queued, so whoever reads it learns of the gap right after it; and every
 * `reportEveryMs` while the output is still behind.
 */

/** Writes some of `bytes`, returning how many (Deno.FsFile#write, Deno.stderr.write). */
export type Output = (bytes: Uint8Array) => Promise<number>;

export interface LogQueueOptions {
  /** Bytes queued at most (1 MiB by default). */
  maxBytes?: number;
  /** How often a "lines dropped" report is queued while the output stays behind. */
  reportEveryMs?: number;
  /** The report line for `count` lines dropped since the last one. */
  report?: (count: number) => string;
}

const encoder = new TextEncoder();
const BATCH_BYTES = 64 * 1024;
/**
 * How long a line waits for others to share its write. A write to stderr runs on a blocking
 * thread and wakes the event loop when done: one per request (its access and audit lines)
 * cost more than the request's own work; gathered, the lines of many requests share one.
 */
export const GATHER_MS = 20;

/** A bounded queue of log lines drained by one asynchronous writer. */
export class LogQueue {
  readonly #output: Output;
  readonly #maxBytes: number;
  readonly #report: (count: number) => string;
  #lines: string[] = [];
  #queuedBytes = 0;
  #dropped = 0;
  #unreported = 0;
  #writing: Promise<void> = Promise.resolve();
  #draining = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Set while lines wait (at most GATHER_MS) for the write that takes them. */
  #gather: ReturnType<typeof setTimeout> | undefined;
  #broken = false;

  constructor(output: Output, options: LogQueueOptions = {}) {
    this.#output = output;
    this.#maxBytes = options.maxBytes ?? 1024 * 1024;
    this.#report = options.report ?? ((n) => `${n} log lines dropped\n`);
    const every = options.reportEveryMs ?? 10_000;
    this.#timer = setInterval(() => this.#reportDropped(), every);
    // The report timer alone never keeps a process alive.
    Deno.unrefTimer(this.#timer);
  }

  /** Lines dropped since the start. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Queues one line (with its newline); false when it was dropped. */
  push(line: string): boolean {
    // Lengths in UTF-16 units: close enough to bytes for a bound, and free to compute.
    if (this.#broken || this.#queuedBytes + line.length > this.#maxBytes) {
      this.#dropped++;
      this.#unreported++;
      return false;
    }
    this.#enqueue(line);
    return true;
  }

  /** Waits until the queue is empty, or `ms` passed. */
  async flush(ms: number): Promise<void> {
    this.#reportDropped();
    this.#startDrain();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
    while (this.#draining) {
      if (await Promise.race([this.#writing.then(() => false), late.then(() => true)])) break;
    }
    clearTimeout(timer);
  }

  /** Stops the report timer (the queued lines are still written). */
  close(): void {
    clearInterval(this.#timer);
  }

  #enqueue(line: string): void {
    this.#lines.push(line);
    this.#queuedBytes += line.length;
    if (!this.#draining && this.#gather === undefined) {
      this.#gather = setTimeout(() => this.#startDrain(), GATHER_MS);
    }
  }

  #startDrain(): void {
    clearTimeout(this.#gather);
    this.#gather = undefined;
    if (this.#draining || this.#lines.length === 0) return;
    this.#draining = true;
    this.#writing = this.#drain();
  }

  #reportDropped(): void {
    if (this.#unreported === 0 || this.#broken) return;
    const count = this.#unreported;
    this.#unreported = 0;
    this.#enqueue(this.#report(count));
  }

  async #drain(): Promise<void> {
    // The loop's last check and the flag's reset happen in one synchronous step: a line queued
    // after it starts a new writer.
    try {
      while (this.#lines.length > 0) await this.#writeBatch();
    } finally {
      this.#draining = false;
    }
    // Caught up: the gap is reported now rather than at the next period.
    this.#reportDropped();
  }

  async #writeBatch(): Promise<void> {
    let batch = "";
    let taken = 0;
    while (taken < this.#lines.length && batch.length < BATCH_BYTES) batch += this.#lines[taken++];
    this.#lines.splice(0, taken);
    try {
      const bytes = encoder.encode(batch);
      for (let off = 0; off < bytes.length;) off += await this.#output(bytes.subarray(off));
    } catch {
      // The reader is gone (EPIPE): nothing can be written any more.
      this.#broken = true;
      this.#dropped += taken + this.#lines.length;
      this.#lines = [];
    }
    this.#queuedBytes = this.#broken ? 0 : this.#queuedBytes - batch.length;
  }
}
