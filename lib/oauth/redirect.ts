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
import {
  differOnlyInPort,
  isCustomScheme,
  parseRedirectUri,
  redirectKind,
  RedirectUriError,
} from "../net/redirect-uri.ts";
import { validateRedirectUris } from "../config/oauth-rules.ts";

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
    this.#extra = new Set(validateRedirectUris(options.extra ?? []));
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
    const kind = redirectKind(requested);
    if (!kind) return false;
    if (registered === requested) return true;
    if (kind !== "loopback" || redirectKind(registered) !== "loopback") return false;
    return differOnlyInPort(registered, requested);
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
