/**
 * The redirect-URI policy: which URIs a client may register, and how a requested `redirect_uri`
 * is matched against a registered one (RFC 9700 §2.1: exact matching; RFC 8252 §7.3: loopback
 * on any port).
 *
 * Registration checks an allow-list: the vendor presets, the ChatGPT per-connector prefix,
 * loopback on any port and path, and the operator's exact `oauth.redirectUris`. Authorization
 * matches byte for byte, except that a loopback URI may differ in its port. The raw text is kept
 * for matching because WHATWG URL parsing normalises exactly the things an attacker varies
 * (case, tabs and newlines, `\`, percent-encoded hosts, `127.1`).
 *
 * @example
 * ```ts
 * const policy = new RedirectPolicy({ extra: ["cursor://anysphere.cursor-mcp/oauth/callback"] });
 * policy.checkRegistration("http://localhost:33418/callback"); // ok
 * RedirectPolicy.matches("http://localhost/callback", "http://localhost:33418/callback"); // true
 * appendParams("https://claude.ai/api/mcp/auth_callback", { code: "c", state: "s" });
 * ```
 * @module
 */

/**
 * A redirect URI that may not be registered or used. The message is the reason alone (callers
 * prefix the URI as they see fit, e.g. `${uri}: ${message}`); it is safe to show to the client.
 */
export class RedirectUriError extends Error {
  override name = "RedirectUriError";
  constructor(readonly uri: string, readonly reason: string) {
    super(reason);
  }
}

/** A bad `oauth.*` setting; `path` is the config key path, e.g. `oauth.redirectUris[2]`. */
export class OAuthConfigError extends Error {
  override name = "OAuthConfigError";
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
  }
}

/**
 * `https` (any host), `loopback` (`http:` on 127.0.0.0/8, `[::1]` or `localhost`; an `https:`
 * loopback URI is plain `https`) or `custom` (any other scheme, e.g. `cursor:`).
 */
export type RedirectKind = "https" | "loopback" | "custom";

/** A redirect URI that passed {@link parseRedirectUri}. */
export interface ParsedRedirect {
  /** The text exactly as given; this, not `url.href`, is what gets matched and redirected to. */
  readonly raw: string;
  readonly url: URL;
  /** Lower-case scheme without the colon. */
  readonly scheme: string;
  readonly kind: RedirectKind;
}

/** Options for {@link parseRedirectUri}. */
export interface ParseRedirectOptions {
  /** Accept a non-http(s) scheme; only for URIs the operator configured. Default false. */
  allowCustomScheme?: boolean;
}

/** Longest redirect URI accepted; far above real clients, low enough to keep stores small. */
export const MAX_REDIRECT_URI_LENGTH = 2048;

/**
 * Exact-match presets for the vendors' web clients: Claude's callbacks
 * (https://support.anthropic.com/en/articles/11503834) and ChatGPT's stable connector callback.
 */
export const REDIRECT_PRESETS: readonly string[] = Object.freeze([
  "https://claude.ai/api/mcp/auth_callback",
  "https://claude.com/api/mcp/auth_callback",
  "https://chatgpt.com/connector_platform_oauth_redirect",
]);

/** ChatGPT's per-connector callback, `https://chatgpt.com/connector/oauth/{callback_id}`. */
export const CHATGPT_CONNECTOR_PREFIX = "https://chatgpt.com/connector/oauth/";

// The callback id is opaque; observed ids are short URL-safe tokens. Anything else (a further
// path, a query, dots) is refused so the prefix rule cannot be stretched to other ChatGPT paths.
const CHATGPT_CALLBACK_ID = /^[A-Za-z0-9_-]{1,128}$/;

// Dangerous in a Location header or a link whatever the configuration says (cf-oauth #97).
const NEVER_SCHEMES = new Set(["javascript", "data", "file", "vbscript", "blob", "about"]);
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** The raw pieces of `scheme://authority/rest`, split without any normalisation. */
interface RawParts {
  /** `scheme://` as written. */
  readonly prefix: string;
  readonly userinfo: boolean;
  /** The host as written, brackets included for IPv6. */
  readonly host: string;
  /** The port digits as written, or null when there is no `:`. */
  readonly port: string | null;
  /** Path and query as written. */
  readonly rest: string;
}

function splitRaw(raw: string): RawParts | null {
  const scheme = SCHEME.exec(raw);
  if (!scheme || !raw.startsWith("//", scheme[0].length)) return null;
  const start = scheme[0].length + 2;
  let end = raw.slice(start).search(/[/?#]/);
  end = end === -1 ? raw.length : start + end;
  let authority = raw.slice(start, end);
  const at = authority.lastIndexOf("@");
  if (at !== -1) authority = authority.slice(at + 1);
  const m = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(authority);
  if (!m) return null;
  return {
    prefix: raw.slice(0, start),
    userinfo: at !== -1,
    host: m[1],
    port: m[2] ?? null,
    rest: raw.slice(end),
  };
}

function checkRawText(text: string): void {
  if (text.length === 0) throw new RedirectUriError(text, "is empty");
  if (text.length > MAX_REDIRECT_URI_LENGTH) {
    throw new RedirectUriError(text, `is longer than ${MAX_REDIRECT_URI_LENGTH} characters`);
  }
  if (/^\s|\s$/.test(text)) {
    throw new RedirectUriError(text, "has leading or trailing whitespace");
  }
  // URL parsing silently drops tabs and newlines, so these must be caught on the raw text.
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f-\x9f]/.test(text)) {
    throw new RedirectUriError(text, "contains a control character");
  }
  if (/\s/.test(text)) throw new RedirectUriError(text, "contains whitespace");
  // The URI is sent back in a Location header, which must be ASCII; clients percent-encode.
  if (/[^\x21-\x7e]/.test(text)) {
    throw new RedirectUriError(text, "contains non-ASCII characters (percent-encode them)");
  }
  // WHATWG treats `\` as `/` in http(s) URLs; other parsers do not. Refuse the differential.
  if (text.includes("\\")) throw new RedirectUriError(text, "contains a backslash");
  if (text.includes("#")) throw new RedirectUriError(text, "must not contain a fragment (#)");
}

function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "[::1]" || LOOPBACK_V4.test(host);
}

/**
 * Parse a redirect URI strictly; throws RedirectUriError with a reason a client can act on.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.1.2 (absolute URI, no fragment)
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7 (loopback and private-use schemes)
 */
export function parseRedirectUri(text: string, options: ParseRedirectOptions = {}): ParsedRedirect {
  if (typeof text !== "string") throw new RedirectUriError(String(text), "must be a string");
  checkRawText(text);
  const schemeMatch = SCHEME.exec(text);
  if (!schemeMatch) throw new RedirectUriError(text, "must be an absolute URI with a scheme");
  const scheme = schemeMatch[1].toLowerCase();
  if (NEVER_SCHEMES.has(scheme)) {
    throw new RedirectUriError(text, `the ${scheme}: scheme is not allowed`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RedirectUriError(text, "is not a valid absolute URI");
  }
  const parts = splitRaw(text);
  if (parts?.userinfo || url.username !== "" || url.password !== "") {
    throw new RedirectUriError(text, "must not contain a user name or password");
  }
  if (scheme !== "http" && scheme !== "https") {
    if (!options.allowCustomScheme) {
      throw new RedirectUriError(
        text,
        `the custom scheme ${scheme}: is allowed only when the operator configures this exact URI`,
      );
    }
    return { raw: text, url, scheme, kind: "custom" };
  }
  // `https:host/x` and `https:///host` parse as `https://host/x`; demand the plain form.
  if (!parts || parts.host === "") {
    throw new RedirectUriError(text, `must start with ${scheme}:// followed by a host`);
  }
  // Percent-encoded, IDN, short-form IPv4 and other non-canonical hosts parse to a different
  // host than the text shows; refusing them keeps what is checked equal to what is visited.
  if (parts.host.toLowerCase() !== url.hostname) {
    throw new RedirectUriError(text, "the host is not written in canonical form");
  }
  if (parts.port !== null && !/^[0-9]{1,5}$/.test(parts.port)) {
    throw new RedirectUriError(text, "has an invalid port");
  }
  if (scheme === "https") return { raw: text, url, scheme, kind: "https" };
  if (!isLoopbackHost(url.hostname)) {
    throw new RedirectUriError(
      text,
      "http: is allowed only for loopback (127.0.0.1, [::1], localhost); use https:",
    );
  }
  return { raw: text, url, scheme, kind: "loopback" };
}

function tryParse(text: string): ParsedRedirect | null {
  try {
    return parseRedirectUri(text, { allowCustomScheme: true });
  } catch {
    return null;
  }
}

/**
 * Whether `uri` is a valid loopback redirect (`http:` to 127.0.0.0/8, `[::1]` or `localhost`).
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 */
export function isLoopback(uri: string): boolean {
  return tryParse(uri)?.kind === "loopback";
}

/**
 * Whether `uri` is a valid redirect with a custom (non-http(s)) scheme, e.g. `cursor:`.
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.1
 */
export function isCustomScheme(uri: string): boolean {
  return tryParse(uri)?.kind === "custom";
}

/** Construction options for {@link RedirectPolicy}. */
export interface RedirectPolicyOptions {
  /** The operator's `oauth.redirectUris`: exact URIs, custom schemes allowed. */
  extra?: readonly string[];
}

/** The registration allow-list and the authorization-time matching rule. */
export class RedirectPolicy {
  readonly #extra: ReadonlySet<string>;

  /** Validates every operator URI; throws OAuthConfigError naming `oauth.redirectUris[i]`. */
  constructor(options: RedirectPolicyOptions = {}) {
    const extra: unknown = options.extra ?? [];
    if (!Array.isArray(extra)) throw new OAuthConfigError("oauth.redirectUris", "must be an array");
    const set = new Set<string>();
    extra.forEach((entry: unknown, i) => {
      const path = `oauth.redirectUris[${i}]`;
      if (typeof entry !== "string") throw new OAuthConfigError(path, "must be a string");
      try {
        parseRedirectUri(entry, { allowCustomScheme: true });
      } catch (e) {
        if (e instanceof RedirectUriError) throw new OAuthConfigError(path, e.message);
        throw e;
      }
      set.add(entry);
    });
    this.#extra = set;
  }

  /** The operator's exact URIs, in configuration order. */
  get extra(): readonly string[] {
    return [...this.#extra];
  }

  /** Whether `uri` is a custom-scheme URI the operator configured exactly. */
  allowsCustomScheme(uri: string): boolean {
    return this.#extra.has(uri) && isCustomScheme(uri);
  }

  /**
   * Throws RedirectUriError unless a client may register `uri`: a preset, the ChatGPT connector
   * prefix, loopback on any port and path, or an operator URI (compared byte for byte).
   * @see https://www.rfc-editor.org/rfc/rfc7591#section-2 (redirect_uris)
   */
  checkRegistration(uri: string): void {
    if (typeof uri === "string" && this.#extra.has(uri)) return;
    const parsed = parseRedirectUri(uri);
    if (parsed.kind === "loopback") return;
    if (REDIRECT_PRESETS.includes(uri)) return;
    if (
      uri.startsWith(CHATGPT_CONNECTOR_PREFIX) &&
      CHATGPT_CALLBACK_ID.test(uri.slice(CHATGPT_CONNECTOR_PREFIX.length))
    ) return;
    throw new RedirectUriError(
      uri,
      "is not on this server's allow-list (the operator can add it to oauth.redirectUris)",
    );
  }

  /**
   * Authorization-time match: byte for byte, except loopback URIs, which may differ only in the
   * port (an absent port matches any). No prefixes, no wildcards, no case folding.
   * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
   * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1-13#section-7.12.2
   */
  static matches(registered: string, requested: string): boolean {
    if (typeof registered !== "string" || typeof requested !== "string") return false;
    const req = tryParse(requested);
    if (!req) return false;
    if (registered === requested) return true;
    if (req.kind !== "loopback" || tryParse(registered)?.kind !== "loopback") return false;
    const a = splitRaw(registered);
    const b = splitRaw(requested);
    return !!a && !!b && a.prefix === b.prefix && a.host === b.host && a.rest === b.rest;
  }
}

/**
 * Add response parameters (`code`, `state`, `iss`, `error`…) to a redirect URI, keeping its
 * query exactly as registered.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.1.2 (query component MUST be retained)
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2
 */
export function appendParams(redirectUri: string, params: Record<string, string>): string {
  if (redirectUri.includes("#")) {
    throw new RedirectUriError(redirectUri, "must not contain a fragment (#)");
  }
  const added = Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
  if (added === "") return redirectUri;
  // Re-serialising through URLSearchParams would rewrite the client's own query (`+`, `%20`).
  const q = redirectUri.indexOf("?");
  const sep = q === -1 ? "?" : /[?&]$/.test(redirectUri) ? "" : "&";
  return redirectUri + sep + added;
}
