/**
 * The well-known paths of the discovery documents, in one place for the route table and the
 * authorization server.
 */

/** Protected-resource metadata (RFC 9728 §3). https://www.rfc-editor.org/rfc/rfc9728#section-3 */
export const PROTECTED_RESOURCE_PATH = "/.well-known/oauth-protected-resource";

/**
 * Authorization-server metadata (RFC 8414 §3) and its OpenID Connect Discovery 1.0 §4 twin.
 * https://www.rfc-editor.org/rfc/rfc8414#section-3
 */
export const AUTHORIZATION_SERVER_PATHS = [
  "/.well-known/oauth-authorization-server",
  "/.well-known/openid-configuration",
] as const;

/** The OpenID Connect discovery path, which clients also append to the issuer's path. */
export const OPENID_CONFIGURATION_PATH = AUTHORIZATION_SERVER_PATHS[1];
