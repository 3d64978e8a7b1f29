/**
 * The rules for the `oauth` settings that name URIs and hosts. Pure: config loading reports a
 * broken rule as a problem at its key path, and the OAuth modules apply the same rule when they
 * are built.
 *
 * @example
 * ```ts
 * validateRedirectUris(["cursor://anysphere.cursor-mcp/oauth/callback"]); // the same list
 * validateClientMetadataHosts(["Example.COM:443"]); // ["example.com"]
 * ```
 * @module
 */
import { parseRedirectUri, RedirectUriError } from "../net/redirect-uri.ts";
import { OAuthConfigError } from "./check.ts";

/**
 * The operator's `oauth.redirectUris` (exact URIs, custom schemes allowed); throws
 * OAuthConfigError naming `oauth.redirectUris[i]`.
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.1 (private-use URI schemes)
 */
export function validateRedirectUris(list: unknown): string[] {
  if (!Array.isArray(list)) throw new OAuthConfigError("oauth.redirectUris", "must be an array");
  return list.map((entry: unknown, i) => {
    const path = `oauth.redirectUris[${i}]`;
    if (typeof entry !== "string") throw new OAuthConfigError(path, "must be a string");
    try {
      parseRedirectUri(entry, { allowCustomScheme: true });
    } catch (e) {
      if (e instanceof RedirectUriError) throw new OAuthConfigError(path, e.message);
      throw e;
    }
    return entry;
  });
}

/**
 * `oauth.clientMetadataHosts` in canonical `host[:port]` form (lower case, no `:443`); throws
 * OAuthConfigError naming `oauth.clientMetadataHosts[i]`.
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document-00
 */
export function validateClientMetadataHosts(list: unknown): string[] {
  if (!Array.isArray(list)) {
    throw new OAuthConfigError("oauth.clientMetadataHosts", "must be an array");
  }
  return list.map((entry: unknown, i) => {
    const host = typeof entry === "string" ? canonicalHost(entry) : null;
    if (!host) {
      const reason = "must be a host name or IP address, optionally with :port, in canonical form";
      throw new OAuthConfigError(`oauth.clientMetadataHosts[${i}]`, reason);
    }
    return host;
  });
}

/** Canonical `host[:port]` for an allow-list entry, or null when it is not one. */
function canonicalHost(entry: string): string | null {
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(entry)) return null;
  const lower = entry.toLowerCase();
  const url = URL.parse(`https://${lower}/`);
  const written = lower.endsWith(":443") ? lower.slice(0, -4) : lower;
  return url && url.hostname !== "" && url.host === written ? url.host : null;
}
