/**
 * OAuth Client ID Metadata Documents (CIMD): a client whose `client_id` is an https URL is
 * described by the JSON document at that URL.
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#client-id-metadata-documents
 *
 * Retrieval is an SSRF surface, so it is narrow: only allow-listed hosts, no redirects, one
 * deadline for DNS, headers and body, a streaming size cap, 200 and JSON only.
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
import { isGlobalUnicast } from "../edge/cidr.ts";
import { BodyTooLarge, readCapped } from "../http.ts";
import {
  OAuthConfigError,
  parseRedirectUri,
  RedirectPolicy,
  RedirectUriError,
} from "./redirect.ts";
import { cleanClientName } from "./client-name.ts";

/** The vendors' own metadata hosts, fetched without DNS checks (a trust policy the spec allows). */
export const DEFAULT_CIMD_HOSTS = Object.freeze(["claude.ai", "claude.com", "chatgpt.com"]);

/** Longest client id URL accepted. */
export const MAX_CLIENT_ID_LENGTH = 2048;
const MIN_TTL_MS = 60_000;
const MAX_TTL_MS = 24 * 60 * 60_000;

/** What went wrong, stable for callers and logs; the message is for people. */
export type CimdErrorCode =
  | "invalid_client_id"
  | "host_not_allowed"
  | "unsafe_address"
  | "fetch_failed"
  | "invalid_document";

/**
 * A metadata document that cannot be used. The message is one human-readable clause without the
 * client id (callers prefix it, e.g. `client ${clientId}: ${message}`) and without internals;
 * network and DNS failures keep the underlying error as `cause`, for the log only.
 */
export class CimdError extends Error {
  override name = "CimdError";
  constructor(
    readonly code: CimdErrorCode,
    readonly clientId: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A validated client metadata document, frozen (it is shared through the cache). */
export interface ClientMetadata {
  readonly client_id: string;
  /** Client-supplied, cleaned of control and bidi characters, at most 200 characters. */
  readonly client_name: string;
  readonly redirect_uris: readonly string[];
  readonly token_endpoint_auth_method: "none";
  /** Kept only when it is an https URL. */
  readonly client_uri?: string;
  /** Kept only when it is an https URL. */
  readonly logo_uri?: string;
}

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
}

function show(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function isLiteralIp(hostname: string): boolean {
  // After URL canonicalisation an IPv4 literal is a dotted quad and an IPv6 one is bracketed.
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith("[");
}

function isLiteralLoopback(hostname: string): boolean {
  return hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
}

function clientIdProblem(id: string): string | null {
  if (typeof id !== "string" || id.length === 0) return "is empty";
  if (id.length > MAX_CLIENT_ID_LENGTH) return "is too long";
  if (/[^\x21-\x7e]/.test(id)) return "contains whitespace, control or non-ASCII characters";
  if (id.includes("#")) return "must not contain a fragment";
  const url = URL.parse(id);
  if (!url) return "is not a URL";
  if (url.username !== "" || url.password !== "") {
    return "must not contain a user name or password";
  }
  // Canonical form rules out dot segments (also `%2e`), odd hosts, default ports and `\`, and
  // makes "the document's client_id equals the URL" a plain string comparison.
  if (url.href !== id) return "is not in canonical URL form";
  if (url.pathname === "/") return "must have a path";
  if (url.protocol === "https:") return null;
  if (url.protocol === "http:" && url.port !== "" && isLiteralLoopback(url.hostname)) return null;
  return "must use https";
}

/**
 * Whether `clientId` names a metadata document: an https URL with a path and no fragment or
 * user info, in canonical form. `http://127.0.0.1:<port>/…` and `http://[::1]:<port>/…` are
 * also accepted so tests can serve documents locally; they are still only fetched when the
 * operator lists that exact `host:port` in `oauth.clientMetadataHosts`.
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document-00#section-3
 */
export function isCimdClientId(clientId: string): boolean {
  return clientIdProblem(clientId) === null;
}

/** Canonical `host[:port]` for an allow-list entry, or null when it is not one. */
function canonicalHost(entry: string): string | null {
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(entry)) return null;
  const lower = entry.toLowerCase();
  const url = URL.parse(`https://${lower}/`);
  const written = lower.endsWith(":443") ? lower.slice(0, -4) : lower;
  return url && url.hostname !== "" && url.host === written ? url.host : null;
}

/** True only for ordinary global unicast; every special-purpose range counts as unsafe. */
function isPublicAddress(text: string): boolean {
  // Zone ids only exist on link-local addresses, which are refused anyway.
  return !text.includes("%") && isGlobalUnicast(text);
}

async function systemResolveDns(host: string): Promise<string[]> {
  const answers = await Promise.allSettled([
    Deno.resolveDns(host, "A"),
    Deno.resolveDns(host, "AAAA"),
  ]);
  return answers.flatMap((a) => a.status === "fulfilled" ? a.value : []);
}

/** The cache lifetime a response asks for, clamped to [60 s, 24 h]; see the module notes. */
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

/** `{ [key]: value }` when `value` is a plain https URL (a link on the consent page), else `{}`. */
function httpsField(key: string, value: unknown): Record<string, string> {
  const ok = typeof value === "string" && value.length <= MAX_CLIENT_ID_LENGTH &&
    /^https:\/\/[\x21-\x7e]+$/.test(value) && URL.canParse(value) && !value.includes("@");
  return ok ? { [key]: value } : {};
}

/**
 * Validate a parsed document for `clientId`; throws CimdError (`invalid_document`).
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document-00#section-4.1
 */
export function validateClientMetadata(
  clientId: string,
  value: unknown,
  redirects?: Pick<RedirectPolicy, "allowsCustomScheme">,
): ClientMetadata {
  const fail = (reason: string) => new CimdError("invalid_document", clientId, reason);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw fail("the metadata document is not a JSON object");
  }
  const doc = value as Record<string, unknown>;
  if (doc.client_id !== clientId) {
    throw fail("the metadata document's client_id does not match the URL it was retrieved from");
  }
  if (Object.hasOwn(doc, "client_secret") || Object.hasOwn(doc, "client_secret_expires_at")) {
    throw fail("the metadata document contains a client secret, which must never be published");
  }
  const method = doc.token_endpoint_auth_method;
  if (method !== undefined && method !== "none") {
    const shown = JSON.stringify(show(String(method)));
    throw fail(
      `the metadata document declares token_endpoint_auth_method ${shown}; ` +
        `only "none" (a public client using PKCE) is supported`,
    );
  }
  const name = typeof doc.client_name === "string" ? cleanClientName(doc.client_name) : "";
  if (name === "") throw fail("the metadata document has no client_name");
  const uris = doc.redirect_uris;
  if (!Array.isArray(uris) || uris.length === 0) {
    throw fail("the metadata document's redirect_uris must be a non-empty list of URIs");
  }
  uris.forEach((uri: unknown, i) => {
    const what = `the metadata document's redirect_uris[${i}]`;
    if (typeof uri !== "string") throw fail(`${what} is not a string`);
    try {
      parseRedirectUri(uri, { allowCustomScheme: redirects?.allowsCustomScheme(uri) ?? false });
    } catch (e) {
      if (e instanceof RedirectUriError) throw fail(`${what} is not acceptable: ${e.reason}`);
      throw e;
    }
  });
  return Object.freeze({
    client_id: clientId,
    client_name: name,
    redirect_uris: Object.freeze([...uris as string[]]),
    token_endpoint_auth_method: "none",
    ...httpsField("client_uri", doc.client_uri),
    ...httpsField("logo_uri", doc.logo_uri),
  });
}

/**
 * Whether `requested` may be used with this document: it matches an entry by
 * {@link RedirectPolicy.matches}, so a loopback entry with no port matches any port.
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 */
export function redirectAllowed(doc: Pick<ClientMetadata, "redirect_uris">, uri: string): boolean {
  return doc.redirect_uris.some((entry) => RedirectPolicy.matches(entry, uri));
}

class Deadline extends Error {}

function abortPromise(signal: AbortSignal): Promise<never> {
  const p = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(new Deadline());
    signal.addEventListener("abort", () => reject(new Deadline()), { once: true });
  });
  p.catch(() => {});
  return p;
}

type HostTrust = "default" | "literal" | "dns";

/** Retrieves, validates and caches client metadata documents. */
export class CimdResolver {
  readonly #o: Required<Omit<CimdResolverOptions, "allowedHosts" | "redirects">>;
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
    const extra: unknown = options.allowedHosts ?? [];
    if (!Array.isArray(extra)) {
      throw new OAuthConfigError("oauth.clientMetadataHosts", "must be an array");
    }
    extra.forEach((entry: unknown, i) => {
      const host = typeof entry === "string" ? canonicalHost(entry) : null;
      if (!host) {
        const reason =
          "must be a host name or IP address, optionally with :port, in canonical form";
        throw new OAuthConfigError(`oauth.clientMetadataHosts[${i}]`, reason);
      }
      if (this.#hosts.get(host) === "default") return;
      this.#hosts.set(host, isLiteralIp(new URL(`https://${host}/`).hostname) ? "literal" : "dns");
    });
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
      pending = this.#load(clientId, url, trust).finally(() => this.#inFlight.delete(clientId));
      this.#inFlight.set(clientId, pending);
    }
    return await pending;
  }

  /** Same as {@link redirectAllowed}. */
  redirectAllowed(doc: Pick<ClientMetadata, "redirect_uris">, uri: string): boolean {
    return redirectAllowed(doc, uri);
  }

  async #load(clientId: string, url: URL, trust: HostTrust): Promise<ClientMetadata> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#o.timeoutMs);
    const aborted = abortPromise(controller.signal);
    try {
      if (trust === "dns") await this.#checkAddresses(clientId, url.hostname, aborted);
      const init: RequestInit = {
        redirect: "manual",
        signal: controller.signal,
        headers: { accept: "application/json" },
      };
      const response = await Promise.race([this.#o.fetch(clientId, init), aborted]);
      const value = await this.#readJson(clientId, response, controller.signal);
      const doc = validateClientMetadata(clientId, value, this.#redirects);
      this.#store(clientId, doc, this.#o.now() + cacheLifetimeMs(response.headers));
      return doc;
    } catch (e) {
      if (e instanceof CimdError) throw e;
      const fail = (reason: string) =>
        new CimdError("fetch_failed", clientId, reason, { cause: e });
      const what = "the metadata document";
      if (e instanceof BodyTooLarge) throw fail(`${what} is larger than ${this.#o.maxBytes} bytes`);
      if (e instanceof Deadline || controller.signal.aborted) {
        throw fail(`${what} could not be retrieved within ${this.#o.timeoutMs / 1000} s`);
      }
      // The underlying message names sockets and OS errors: kept as `cause`, never shown.
      throw fail(`${what} could not be retrieved (network error)`);
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }

  async #checkAddresses(clientId: string, hostname: string, aborted: Promise<never>) {
    // Residual risk: fetch resolves the name again, so a rebinding DNS server could still
    // answer differently; operators should list only hosts whose DNS they trust.
    let cause: unknown;
    const addresses = await Promise.race([this.#o.resolveDns(hostname), aborted]).catch((e) => {
      if (e instanceof Deadline) throw e;
      // Under `--allow-net=<hosts>`, Deno.resolveDns also needs the system name server allowed.
      cause = e;
      return [] as string[];
    });
    const host = `the metadata host ${hostname}`;
    if (addresses.length === 0) {
      throw new CimdError("fetch_failed", clientId, `${host} could not be resolved`, { cause });
    }
    if (!addresses.every(isPublicAddress)) {
      const reason = `${host} resolves to a private or otherwise non-public address`;
      throw new CimdError("unsafe_address", clientId, reason);
    }
  }

  async #readJson(clientId: string, response: Response, signal: AbortSignal) {
    const fail = (reason: string, code: CimdErrorCode = "fetch_failed") => {
      response.body?.cancel().catch(() => {});
      return new CimdError(code, clientId, `the metadata document ${reason}`);
    };
    if (response.type === "opaqueredirect" || (response.status >= 300 && response.status < 400)) {
      throw fail("URL answered with a redirect, which is not allowed");
    }
    if (response.status !== 200) throw fail(`URL answered HTTP ${response.status}, not 200`);
    const type = (response.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (!/^application\/([a-z0-9.+-]+\+)?json$/.test(type)) {
      throw fail("is not served as JSON (Content-Type application/json)");
    }
    const bytes = response.body
      ? await readCapped(response.body, this.#o.maxBytes, signal)
      : new Uint8Array(0);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw fail("is not valid UTF-8", "invalid_document");
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw fail("is not valid JSON", "invalid_document");
    }
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
