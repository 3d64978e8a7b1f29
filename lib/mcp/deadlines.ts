/**
 * Callbacks due a fixed time after they were added, all on one timer. Every waiting response
 * has the same delay (STREAM_AFTER_MS), so the order they were added in is the order they come
 * due: the first is the next one, and a timer object per request is not needed (Deno's
 * `setTimeout` allocates one, and on a busy proxy it outlives young-generation collections).
 * The timer never keeps the process up.
 */
export class Deadlines {
  readonly #delayMs: number;
  readonly #now: () => number;
  /** In the order added, which is the order due. */
  readonly #waiting = new Set<{ due: number; run: () => void }>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(delayMs: number, now: () => number = () => performance.now()) {
    this.#delayMs = delayMs;
    this.#now = now;
  }

  /** Runs `run` once `delayMs` from now; the returned function cancels it. */
  add(run: () => void): () => void {
    const entry = { due: this.#now() + this.#delayMs, run };
    this.#waiting.add(entry);
    this.#timer ??= this.#schedule(this.#delayMs);
    return () => void this.#waiting.delete(entry);
  }

  /** Callbacks waiting now. */
  get size(): number {
    return this.#waiting.size;
  }

  #schedule(ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => this.#fire(), ms);
    Deno.unrefTimer(timer);
    return timer;
  }

  #fire(): void {
    this.#timer = undefined;
    const now = this.#now();
    const due: (() => void)[] = [];
    for (const entry of this.#waiting) {
      if (entry.due > now) {
        this.#timer = this.#schedule(Math.max(1, entry.due - now));
        break;
      }
      this.#waiting.delete(entry);
      due.push(entry.run);
    }
    for (const run of due) run();
  }
}
