/**
 * The source-IP allow-list (`network.allow`, `network.rangeSources`): static
 * CIDRs, the built-in `anthropic` range, and downloaded lists (`openai`, extra sources) refreshed
 * on a timer. A list that never loaded matches nothing; the allow-list only ever narrows access.
 *
 * @example
 * ```ts
 * const allow = new NetworkAllowList({ allow: ["openai", "anthropic"] }, deps);
 * await allow.start();
 * allow.allows("160.79.104.9"); // true
 * ```
 * @module
 */
import { CidrSet } from "../net/cidr.ts";
import { validateAllowList } from "../config/network-rules.ts";
import type { NetworkSettings } from "../config/network-schema.ts";
import {
  ANTHROPIC_RANGES,
  OPENAI_RANGE_URLS,
  RangeList,
  type RangeListDeps,
  type RangeListStatus,
} from "./ranges.ts";

const HOUR = 3600 * 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** `network.allow` / `network.rangeSources`; absent means empty. */
export type NetworkAllowListConfig = Partial<Pick<NetworkSettings, "allow" | "rangeSources">>;

/** Dependencies of a {@link NetworkAllowList}: those of each list plus the schedule. */
export interface NetworkAllowListDeps extends RangeListDeps {
  /** Between successful refresh rounds; default 12 h. */
  refreshIntervalMs?: number;
  /** After a round with a failure; default 5 min (capped at refreshIntervalMs). */
  retryIntervalMs?: number;
}

/** What /healthz shows for the allow-list. */
export interface NetworkAllowListStatus {
  enabled: boolean;
  staticRanges: number;
  lists: RangeListStatus[];
}

function interval(value: number | undefined, fallback: number, name: string): number {
  const ms = value ?? fallback;
  if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_TIMER_MS) {
    throw new RangeError(`${name} must be between 1 and ${MAX_TIMER_MS} ms`);
  }
  return ms;
}

/**
 * The source-IP allow-list. Construction is cheap and does no I/O, so a config reload builds a
 * new instance, `start()`s it (cached copies make it ready at once) and `stop()`s the old one.
 */
export class NetworkAllowList {
  /** False when neither `allow` nor `rangeSources` has entries: every address is allowed. */
  readonly enabled: boolean;
  readonly #static: CidrSet;
  readonly #lists: RangeList[];
  readonly #refreshMs: number;
  readonly #retryMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #state: "new" | "started" | "stopped" = "new";

  /** Throws NetworkConfigError naming `network.allow[i]` or `network.rangeSources[i]`. */
  constructor(config: NetworkAllowListConfig, deps: NetworkAllowListDeps) {
    const { entries, sources } = validateAllowList(config);
    this.#refreshMs = interval(deps.refreshIntervalMs, 12 * HOUR, "refreshIntervalMs");
    this.#retryMs = Math.min(
      interval(deps.retryIntervalMs, 5 * 60_000, "retryIntervalMs"),
      this.#refreshMs,
    );
    const cidrs: string[] = [];
    const urls = new Map<string, string | undefined>();
    for (const entry of entries) {
      if (!("preset" in entry)) cidrs.push(entry.cidr);
      else if (entry.preset === "anthropic") cidrs.push(...ANTHROPIC_RANGES);
      else for (const u of OPENAI_RANGE_URLS) urls.set(u, "openai");
    }
    for (const href of sources) if (!urls.has(href)) urls.set(href, undefined);
    this.#static = new CidrSet(cidrs);
    this.#lists = [...urls].map(([url, label]) => new RangeList(url, deps, label));
    // A configured range source is an intent to restrict; never let it mean "allow everyone".
    this.enabled = entries.length > 0 || sources.length > 0;
  }

  /** Whether a client IP may reach the protected endpoints. */
  allows(ip: string): boolean {
    if (!this.enabled) return true;
    if (this.#static.has(ip)) return true;
    return this.#lists.some((list) => list.current().has(ip));
  }

  /** The downloaded lists (for tests and diagnostics). */
  get lists(): readonly RangeList[] {
    return this.#lists;
  }

  /** Load cached copies, refresh every list once, then keep refreshing on unref'd timers. */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("NetworkAllowList.start() called twice");
    this.#state = "started";
    await Promise.all(this.#lists.map((l) => l.loadCached()));
    if (this.#state !== "started") return;
    const ok = await this.refreshAll();
    this.#schedule(ok);
  }

  /** Refresh every list now; resolves true when all succeeded. */
  async refreshAll(): Promise<boolean> {
    const results = await Promise.all(this.#lists.map((l) => l.refresh()));
    return results.every(Boolean);
  }

  /** Cancel timers and downloads in flight; final (the lists keep answering from memory). */
  stop(): void {
    this.#state = "stopped";
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const list of this.#lists) list.close();
  }

  /** Per-list count and age, for /healthz. */
  status(): NetworkAllowListStatus {
    return {
      enabled: this.enabled,
      staticRanges: this.#static.size,
      lists: this.#lists.map((l) => l.status()),
    };
  }

  #schedule(lastOk: boolean): void {
    if (this.#state !== "started" || this.#lists.length === 0) return;
    // Retry sooner after a failure so a blip at start does not fail closed for 12 h.
    const timer = setTimeout(async () => {
      this.#timer = undefined;
      // An unhandled rejection here would kill the process (e.g. a throwing log sink).
      const ok = await this.refreshAll().catch(() => false);
      this.#schedule(ok);
    }, lastOk ? this.#refreshMs : this.#retryMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
