/**
 * A client ID metadata document and its client id: which client ids name a document, what a
 * document must hold, and which redirect URIs it allows. Pure rules; retrieval is in
 * cimd-fetch.ts and caching in cimd.ts.
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @module
 */
import { RedirectPolicy } from "./redirect.ts";
import { parseRedirectUri, RedirectUriError } from "../net/redirect-uri.ts";
import { cleanClientName } from "./client-name.ts";

/** Longest client id URL accepted. */
export const MAX_CLIENT_ID_LENGTH = 2048;

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

function show(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function isLiteralLoopback(hostname: string): boolean {
  return hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * Why `id` cannot name a metadata document ("is empty", "must use https"…), or null.
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document-00#section-3
 */
export function clientIdProblem(id: string): string | null {
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
