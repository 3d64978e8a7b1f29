/**
 * The edge every request passes first: the real client IP (the TCP peer, or a trusted proxy's
 * header), the Host check, the source-IP allow-list per endpoint class, and rate limits.
 * Nothing behind it derives the client IP again.
 */
import type { Config } from "../config/schema.ts";
import type { NetworkSettings } from "../config/network-schema.ts";
import type { Logger } from "../log.ts";
import type { Store } from "../store/store.ts";
import { isLoopback } from "../net/cidr.ts";
import { type ClientIp, type ClientIpResolver, createClientIpResolver } from "./client-ip.ts";
import { NetworkAllowList } from "./ip-allowlist.ts";
import type { RangeStore } from "./ranges.ts";
import { RateLimiter } from "./rate-limit.ts";

export interface EdgeDeps {
  log: Logger;
  store?: Store;
  fetch?: typeof fetch;
  now?: () => number;
}

/** The allow-list as /healthz shows it. */
export interface NetworkStatus {
  enabled: boolean;
  staticRanges: number;
  lists: Array<{ url: string; count: number; ageSeconds: number | null; lastError: string | null }>;
}

/** The network-facing checks, rebuilt in place when the `network` section is reloaded. */
export class Edge {
  #resolve: ClientIpResolver;
  #allowList: NetworkAllowList;
  #network: NetworkSettings;
  readonly limits: {
    register: RateLimiter;
    token: RateLimiter;
    authorize: RateLimiter;
    failedAuth: RateLimiter;
  };
  readonly #publicHost: string | null;
  readonly #listenHosts = new Set<string>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #generation = 0;

  constructor(config: Config, private readonly deps: EdgeDeps) {
    this.#network = config.network;
    this.#resolve = createClientIpResolver(config.network);
    this.#allowList = this.#build(config.network);
    const l = config.limits;
    const keying = { ipv6Prefix: l.ipv6Prefix };
    this.limits = {
      register: new RateLimiter(l.registerRate, keying),
      token: new RateLimiter(l.tokenRate, keying),
      authorize: new RateLimiter(l.authorizeRate, keying),
      failedAuth: new RateLimiter(l.failedAuthRate, keying),
    };
    this.#publicHost = config.auth ? hostOf(config.auth.publicUrl) : null;
  }

  /** Loads the cached range lists and starts refreshing (waits at most `waitMs` for the first round). */
  async start(waitMs = 3000): Promise<void> {
    const started = this.#allowList.start().catch((error) => {
      this.deps.log.error("range lists failed to start", { error: String(error) });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([started, new Promise((r) => timer = setTimeout(r, waitMs))]);
    clearTimeout(timer);
    this.#sweeper = setInterval(() => this.sweep(), 60_000);
    Deno.unrefTimer(this.#sweeper);
  }

  /** Records the addresses the server listens on (the Host values local clients send). */
  listening(hosts: string[]): void {
    for (const host of hosts) this.#listenHosts.add(host.toLowerCase());
  }

  /** The real client IP of a request. */
  clientIp(peer: string, headers: Headers): ClientIp {
    return this.#resolve(peer, headers);
  }

  /**
   * True when `host` is the public URL's host, or a listen address used from this machine.
   * Anything else is a DNS-rebinding attempt or a misdirected request.
   */
  hostAllowed(host: string | null, peer: string): boolean {
    if (!host) return false;
    const h = host.toLowerCase();
    if (
      this.#publicHost !== null &&
      (h === this.#publicHost || stripDefaultPort(h) === this.#publicHost)
    ) {
      return true;
    }
    return isLoopback(peer) && this.#listenHosts.has(h);
  }

  /** Whether the source-IP allow-list admits `ip` to an endpoint of class `route`. */
  ipAllowed(ip: string, protectedRoute: boolean): boolean {
    return !protectedRoute || this.#allowList.allows(ip);
  }

  get protectMetadata(): boolean {
    return this.#network.protectMetadata;
  }

  /** Swaps in a reloaded `network` section; live sessions are untouched. */
  async reload(network: NetworkSettings): Promise<void> {
    const next = this.#build(network);
    // Reloads overlap when a download is slow: only the newest one may swap in.
    const generation = ++this.#generation;
    await next.start().catch((error) =>
      this.deps.log.error("range lists failed to start", { error: String(error) })
    );
    if (generation !== this.#generation) {
      next.stop();
      return;
    }
    const old = this.#allowList;
    this.#resolve = createClientIpResolver(network);
    this.#allowList = next;
    this.#network = network;
    old.stop();
  }

  /** Drops rate-limit buckets that refilled (called periodically). */
  sweep(): void {
    for (const [name, limiter] of Object.entries(this.limits)) {
      limiter.sweep();
      const overflowed = limiter.takeOverflowed();
      if (overflowed > 0) {
        this.deps.log.warn("rate-limit table full: new clients shared one bucket", {
          limit: name,
          requests: overflowed,
        });
      }
    }
  }

  status(): NetworkStatus {
    const s = this.#allowList.status();
    return {
      enabled: s.enabled,
      staticRanges: s.staticRanges,
      lists: s.lists.map((l) => ({
        url: l.url,
        count: l.count,
        ageSeconds: l.ageSeconds,
        lastError: l.lastError,
      })),
    };
  }

  stop(): void {
    this.#generation++;
    clearInterval(this.#sweeper);
    this.#allowList.stop();
  }

  #build(network: NetworkSettings): NetworkAllowList {
    const { store, log } = this.deps;
    const rangeStore: RangeStore = store
      ? {
        load: (url) => store.getDocument(url),
        save: (url, text, at) => store.putDocument(url, text, at),
      }
      : { load: () => Promise.resolve(null), save: () => Promise.resolve() };
    return new NetworkAllowList({ allow: network.allow, rangeSources: network.rangeSources }, {
      fetch: this.deps.fetch ?? fetch,
      now: this.deps.now ?? Date.now,
      store: rangeStore,
      log: (level, msg) => log[level](msg),
      refreshIntervalMs: network.refreshIntervalMs,
    });
  }
}

function hostOf(url: string): string {
  return new URL(url).host.toLowerCase();
}

function stripDefaultPort(host: string): string {
  return host.replace(/:(443|80)$/, "");
}
