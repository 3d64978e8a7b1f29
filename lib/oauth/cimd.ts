/**
 * OAuth Client ID Metadata Documents (CIMD): a client whose `client_id` is an https URL is
 * described by the JSON document at that URL.
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#client-id-metadata-documents
 *
 * Retrieval is an SSRF surface, so it is narrow: only allow-listed hosts, no redirects, one
 * deadline for DNS, headers and body, a streaming size cap, 200 and JSON only (cimd-fetch.ts).
 * The rules for client ids and documents are in cimd-document.ts; this file holds the trusted
 * hosts and the cache.
 *
 * Caching: a document lives for `max-age` (minus `Age`) clamped to [60 s, 24 h]; `no-store`,
 * `no-cache` or no `max-age` mean the 60 s floor, so one login's /authorize, consent and token
 * steps cost one retrieval while a changed document is seen within a minute. At most 256
 * entries, oldest first out. Failures are not cached (the user's retry is the fix path, and
 * only allow-listed hosts are ever asked); concurrent requests for one id share one retrieval.
 *
 * @example
 * ```ts
 * const policy = new RedirectPolicy({ extra: [] });
 * const cimd = new CimdResolver({ fetch, now: Date.now, redirects: policy });
 * const doc = await cimd.resolve("https://claude.ai/oauth/claude-code-client-metadata");
 * redirectAllowed(doc, "http://localhost:53682/callback"); // true: loopback, any port
 * ```
 * @module
 */
import {
  CimdError,
  clientIdProblem,
  type ClientMetadata,
  redirectAllowed,
  validateClientMetadata,
} from "./cimd-document.ts";
import { retrieveDocument, systemResolveDns } from "./cimd-fetch.ts";
import type { RedirectPolicy } from "./redirect.ts";
import { validateClientMetadataHosts } from "../config/oauth-rules.ts";

export {
  CimdError,
  type CimdErrorCode,
  type ClientMetadata,
  isCimdClientId,
  MAX_CLIENT_ID_LENGTH,
  redirectAllowed,
  validateClientMetadata,
} from "./cimd-document.ts";

/** The vendors' own metadata hosts, fetched without DNS checks (a trust policy the spec allows). */
export const DEFAULT_CIMD_HOSTS = Object.freeze(["claude.ai", "claude.com", "chatgpt.com"]);

const MIN_TTL_MS = 60_000;
const MAX_TTL_MS = 24 * 60 * 60_000;

/** Dependencies and limits of a {@link CimdResolver}. */
export interface CimdResolverOptions {
  fetch: typeof fetch;
  /** Milliseconds since the epoch; drives cache expiry. */
  now: () => number;
  /** A/AAAA lookup for operator hosts given by name; defaults to `Deno.resolveDns`. */
  resolveDns?: (host: string) => Promise<string[]>;
  /** The operator's `oauth.clientMetadataHosts` (`host` or `host:port`), added to the defaults. */
  allowedHosts?: readonly string[];
  /**
   * The operator's redirect policy (or any predicate in that shape): a custom-scheme redirect URI
   * in a document is accepted only if `allowsCustomScheme` says so. Default: never.
   */
  redirects?: Pick<RedirectPolicy, "allowsCustomScheme">;
  /** Deadline for DNS, headers and body together. Default 5000. */
  timeoutMs?: number;
  /** Body size cap in bytes, enforced while streaming. Default 16384. */
  maxBytes?: number;
  /** Cache capacity; the oldest entry is evicted first. Default 256. */
  maxEntries?: number;
  /**
   * A cache shared by every instance (the store): consulted on a miss in memory and written after
   * each retrieval, so several instances behind one URL retrieve a document once. Its documents
   * are validated again when read. Failures of the shared cache only cost a retrieval.
   */
  shared?: SharedCimdCache;
}

/** Where instances share retrieved documents (the store's CIMD records). */
export interface SharedCimdCache {
  get(clientId: string): Promise<{ doc: Record<string, unknown>; expiresAt: number } | null>;
  put(clientId: string, doc: Record<string, unknown>, expiresAt: number): Promise<void>;
}

function isLiteralIp(hostname: string): boolean {
  // After URL canonicalisation an IPv4 literal is a dotted quad and an IPv6 one is bracketed.
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith("[");
}

/**
 * The cache lifetime a response asks for, clamped to [60 s, 24 h]; see the module notes.
 * @see https://www.rfc-editor.org/rfc/rfc9111#section-5.2.2.1
 * @see https://www.rfc-editor.org/rfc/rfc9111#section-5.1
 */
export function cacheLifetimeMs(headers: Headers): number {
  const cc = (headers.get("cache-control") ?? "").toLowerCase();
  const directives = cc.split(",").map((d) => d.trim());
  if (directives.includes("no-store") || directives.includes("no-cache")) return MIN_TTL_MS;
  const maxAge = directives.map((d) => /^max-age="?(\d{1,10})"?$/.exec(d)).find((m) => m);
  if (!maxAge) return MIN_TTL_MS;
  // A shared cache in front of the vendor may already have held the response for `Age` seconds.
  const ageText = headers.get("age") ?? "";
  const age = /^\d{1,10}$/.test(ageText) ? Number(ageText) : 0;
  return Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, (Number(maxAge[1]) - age) * 1000));
}

type HostTrust = "default" | "literal" | "dns";

/** Retrieves, validates and caches client metadata documents. */
export class CimdResolver {
  readonly #o: Required<Omit<CimdResolverOptions, "allowedHosts" | "redirects" | "shared">>;
  readonly #shared: SharedCimdCache | undefined;
  readonly #redirects: CimdResolverOptions["redirects"];
  readonly #hosts = new Map<string, HostTrust>(DEFAULT_CIMD_HOSTS.map((h) => [h, "default"]));
  readonly #cache = new Map<string, { doc: ClientMetadata; expiresAt: number }>();
  readonly #inFlight = new Map<string, Promise<ClientMetadata>>();

  /** Validates the host list; throws OAuthConfigError naming `oauth.clientMetadataHosts[i]`. */
  constructor(options: CimdResolverOptions) {
    this.#o = {
      fetch: options.fetch,
      now: options.now,
      resolveDns: options.resolveDns ?? systemResolveDns,
      timeoutMs: options.timeoutMs ?? 5000,
      maxBytes: options.maxBytes ?? 16384,
      maxEntries: Math.max(1, options.maxEntries ?? 256),
    };
    this.#redirects = options.redirects;
    this.#shared = options.shared;
    for (const host of validateClientMetadataHosts(options.allowedHosts ?? [])) {
      if (this.#hosts.get(host) === "default") continue;
      this.#hosts.set(host, isLiteralIp(new URL(`https://${host}/`).hostname) ? "literal" : "dns");
    }
  }

  /**
   * The validated document for `clientId`, from cache or retrieved now; throws CimdError.
   * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document-00#section-4
   */
  async resolve(clientId: string): Promise<ClientMetadata> {
    const problem = clientIdProblem(clientId);
    if (problem) {
      throw new CimdError("invalid_client_id", String(clientId), `the client id URL ${problem}`);
    }
    const url = new URL(clientId);
    const trust = this.#hosts.get(url.host);
    if (!trust) {
      const reason = `${url.host} is not a trusted client metadata host on this server ` +
        `(the operator can add it to oauth.clientMetadataHosts)`;
      throw new CimdError("host_not_allowed", clientId, reason);
    }
    const cached = this.#cache.get(clientId);
    if (cached && cached.expiresAt > this.#o.now()) return cached.doc;
    if (cached) this.#cache.delete(clientId);
    let pending = this.#inFlight.get(clientId);
    if (!pending) {
      pending = this.#load(clientId, trust).finally(() => this.#inFlight.delete(clientId));
      this.#inFlight.set(clientId, pending);
    }
    return await pending;
  }

  /** Same as {@link redirectAllowed}. */
  redirectAllowed(doc: Pick<ClientMetadata, "redirect_uris">, uri: string): boolean {
    return redirectAllowed(doc, uri);
  }

  async #load(clientId: string, trust: HostTrust): Promise<ClientMetadata> {
    const shared = await this.#shared?.get(clientId).catch(() => null);
    if (shared && shared.expiresAt > this.#o.now()) {
      try {
        const doc = validateClientMetadata(clientId, shared.doc, this.#redirects);
        this.#store(clientId, doc, shared.expiresAt);
        return doc;
      } catch {
        // Not valid here (another redirect policy): retrieve it.
      }
    }
    const { value, headers } = await retrieveDocument(clientId, trust === "dns", this.#o);
    const doc = validateClientMetadata(clientId, value, this.#redirects);
    const expiresAt = this.#o.now() + cacheLifetimeMs(headers);
    this.#store(clientId, doc, expiresAt);
    await this.#shared?.put(clientId, value as Record<string, unknown>, expiresAt).catch(() => {});
    return doc;
  }

  #store(clientId: string, doc: ClientMetadata, expiresAt: number): void {
    this.#cache.delete(clientId);
    this.#cache.set(clientId, { doc, expiresAt });
    // Map order is insertion order, so the first key is the oldest entry.
    while (this.#cache.size > this.#o.maxEntries) {
      this.#cache.delete(this.#cache.keys().next().value as string);
    }
  }
}
