/**
 * Token buckets per client: `burst` requests at once, refilled continuously at `burst` per
 * period. A client is its IPv4 address or its IPv6 network (`ipv6Prefix` bits, /64 by default),
 * so rotating addresses inside one subscriber's prefix does not buy fresh buckets.
 *
 * Memory is bounded to `maxKeys` buckets, and full buckets are forgotten by `sweep()`. A tracked
 * bucket is never evicted to make room: that would let a caller with many addresses flush the
 * buckets of the clients it attacks. While the table is full (after a sweep), new clients share
 * one overflow bucket, which fails closed for them and leaves everyone already tracked alone.
 */
import type { Rate } from "../config/schema.ts";
import { networkKey } from "../net/cidr.ts";

interface Bucket {
  tokens: number;
  at: number;
}

export type Verdict = { ok: true } | { ok: false; retryAfterS: number };

export interface RateLimiterOptions {
  /** IPv6 clients are keyed by their network of this many bits (default 64). */
  ipv6Prefix?: number;
  /** Most buckets kept (default 10 000). */
  maxKeys?: number;
  now?: () => number;
}

/** The shortest time between two sweeps forced by a full table. */
const FULL_SWEEP_MS = 1000;

/** One rate limit, keyed by client network. */
export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #overflow: Bucket;
  readonly #perMs: number;
  readonly #prefix: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  #sweptAt = -Infinity;
  #overflowed = 0;

  constructor(readonly rate: Rate, options: RateLimiterOptions = {}) {
    this.#perMs = rate.burst / rate.periodMs;
    this.#prefix = options.ipv6Prefix ?? 64;
    this.#maxKeys = options.maxKeys ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#overflow = { tokens: rate.burst, at: this.#now() };
  }

  /** The bucket key of a client IP: the address, or its IPv6 network. */
  keyOf(ip: string): string {
    return networkKey(ip, this.#prefix);
  }

  /** Takes one token for client `ip`, or says how long until one is available. */
  take(ip: string): Verdict {
    const bucket = this.#bucket(this.keyOf(ip));
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterS: this.#retryAfter(bucket) };
  }

  /** Whether client `ip` has a token left, without taking it. */
  check(ip: string): Verdict {
    const key = this.keyOf(ip);
    const bucket = this.#buckets.get(key) ??
      (this.#buckets.size >= this.#maxKeys ? this.#overflow : undefined);
    if (!bucket) return { ok: true };
    this.#refill(bucket);
    return bucket.tokens >= 1 ? { ok: true } : { ok: false, retryAfterS: this.#retryAfter(bucket) };
  }

  /** Forgets buckets that have refilled completely. */
  sweep(): void {
    this.#sweptAt = this.#now();
    for (const [key, bucket] of this.#buckets) {
      this.#refill(bucket);
      if (bucket.tokens >= this.rate.burst) this.#buckets.delete(key);
    }
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** New clients sent to the overflow bucket since the last call (for a log line). */
  takeOverflowed(): number {
    const n = this.#overflowed;
    this.#overflowed = 0;
    return n;
  }

  #bucket(key: string): Bucket {
    let bucket = this.#buckets.get(key);
    if (bucket) {
      this.#refill(bucket);
      return bucket;
    }
    if (this.#buckets.size >= this.#maxKeys && this.#now() - this.#sweptAt >= FULL_SWEEP_MS) {
      this.sweep();
    }
    if (this.#buckets.size >= this.#maxKeys) {
      this.#overflowed++;
      this.#refill(this.#overflow);
      return this.#overflow;
    }
    bucket = { tokens: this.rate.burst, at: this.#now() };
    this.#buckets.set(key, bucket);
    return bucket;
  }

  #refill(bucket: Bucket): void {
    const now = this.#now();
    bucket.tokens = Math.min(this.rate.burst, bucket.tokens + (now - bucket.at) * this.#perMs);
    bucket.at = now;
  }

  #retryAfter(bucket: Bucket): number {
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#perMs / 1000));
  }
}
