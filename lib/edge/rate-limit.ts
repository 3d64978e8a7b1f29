/**
 * Token buckets per client IP: `burst` requests at once, refilled continuously at `burst` per
 * period. Memory is bounded: at most `maxKeys` buckets, the oldest dropped first, and full
 * buckets are forgotten by `sweep()`.
 */
import type { Rate } from "../config/schema.ts";

interface Bucket {
  tokens: number;
  at: number;
}

export type Verdict = { ok: true } | { ok: false; retryAfterS: number };

/** One rate limit, keyed by client IP. */
export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #perMs: number;

  constructor(
    readonly rate: Rate,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    this.#perMs = rate.burst / rate.periodMs;
  }

  /** Takes one token for `key`, or says how long until one is available. */
  take(key: string): Verdict {
    const bucket = this.#bucket(key);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterS: this.#retryAfter(bucket) };
  }

  /** Whether `key` has a token left, without taking it. */
  check(key: string): Verdict {
    const bucket = this.#buckets.get(key);
    if (!bucket) return { ok: true };
    this.#refill(bucket);
    return bucket.tokens >= 1 ? { ok: true } : { ok: false, retryAfterS: this.#retryAfter(bucket) };
  }

  /** Forgets buckets that have refilled completely. */
  sweep(): void {
    for (const [key, bucket] of this.#buckets) {
      this.#refill(bucket);
      if (bucket.tokens >= this.rate.burst) this.#buckets.delete(key);
    }
  }

  get size(): number {
    return this.#buckets.size;
  }

  #bucket(key: string): Bucket {
    let bucket = this.#buckets.get(key);
    if (bucket) {
      this.#refill(bucket);
      return bucket;
    }
    if (this.#buckets.size >= this.maxKeys) {
      this.#buckets.delete(this.#buckets.keys().next().value as string);
    }
    bucket = { tokens: this.rate.burst, at: this.now() };
    this.#buckets.set(key, bucket);
    return bucket;
  }

  #refill(bucket: Bucket): void {
    const now = this.now();
    bucket.tokens = Math.min(this.rate.burst, bucket.tokens + (now - bucket.at) * this.#perMs);
    bucket.at = now;
  }

  #retryAfter(bucket: Bucket): number {
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#perMs / 1000));
  }
}
