/**
 * Strict redirect-URI syntax (RFC 6749 §3.1.2, RFC 8252 §7): what a redirect URI may look like
 * at all, before any policy decides whether a client may use it. The raw text is what counts:
 * WHATWG URL parsing normalises exactly the things an attacker varies (case, tabs and newlines,
 * `\`, percent-encoded hosts, `127.1`), so anything whose parsed form differs from its text is
 * refused.
 *
 * @example
 * ```ts
 * parseRedirectUri("http://localhost:33418/callback").kind; // "loopback"
 * parseRedirectUri("cursor://anysphere.cursor-mcp/oauth/callback"); // throws RedirectUriError
 * redirectKind("cursor://anysphere.cursor-mcp/oauth/callback"); // "custom"
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

/** The kind of a valid redirect URI (custom schemes allowed), or null when it is not one. */
export function redirectKind(text: string): RedirectKind | null {
  try {
    return parseRedirectUri(text, { allowCustomScheme: true }).kind;
  } catch {
    return null;
  }
}

/**
 * Whether two URIs are written the same except for the port (scheme, host, path and query
 * compared as written, byte for byte).
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3 (loopback redirects on any port)
 */
export function differOnlyInPort(a: string, b: string): boolean {
  const x = splitRaw(a);
  const y = splitRaw(b);
  return !!x && !!y && x.prefix === y.prefix && x.host === y.host && x.rest === y.rest;
}

/**
 * Whether `uri` is a valid loopback redirect (`http:` to 127.0.0.0/8, `[::1]` or `localhost`).
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 */
export function isLoopback(uri: string): boolean {
  return redirectKind(uri) === "loopback";
}

/**
 * Whether `uri` is a valid redirect with a custom (non-http(s)) scheme, e.g. `cursor:`.
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.1
 */
export function isCustomScheme(uri: string): boolean {
  return redirectKind(uri) === "custom";
}
