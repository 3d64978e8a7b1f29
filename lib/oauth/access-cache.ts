/**
 * The hot path of the token check: what the store said about an access token (by hash), kept
 * in memory so a request costs one map lookup and no store read. Bounded, and cleared whenever
 * anything is revoked (here, or by an owner command in another process via the control epoch).
 */

/** What a verified access token stands for. */
export interface AccessEntry {
  grantId: string;
  clientId: string;
  userId: number;
  login: string;
  scope: string;
  resource: string;
  /** The earlier of the token's and the grant's expiry. */
  expiresAt: number;
}

/**
 * A bounded map of token hash → AccessEntry; the oldest entry goes first when full. Each clear
 * starts a new generation: a check that read the store before a clear (a revocation on another
 * instance may land between its read and its `set`) is not cached.
 */
export class AccessCache {
  readonly #entries = new Map<string, AccessEntry>();
  #generation = 0;

  constructor(private readonly max = 10_000) {}

  get(hash: string, now: number): AccessEntry | undefined {
    const entry = this.#entries.get(hash);
    if (entry && entry.expiresAt <= now) {
      this.#entries.delete(hash);
      return undefined;
    }
    return entry;
  }

  /** Bumped by every clear; read it before the store lookup and pass it to `set`. */
  get generation(): number {
    return this.#generation;
  }

  set(hash: string, entry: AccessEntry, generation = this.#generation): void {
    if (generation !== this.#generation) return;
    if (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(hash, entry);
  }

  /** Forgets everything: after a revocation or an allow-list change. */
  clear(): void {
    this.#generation++;
    this.#entries.clear();
  }
}
