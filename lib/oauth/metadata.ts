/**
 * Discovery: protected-resource metadata (RFC 9728) per MCP endpoint and at the root,
 * authorization-server metadata (RFC 8414, mirrored at the OpenID path), and the
 * `WWW-Authenticate` challenge that points clients at them.
 */
import type { AuthConfig } from "../config/auth-schema.ts";
import { PROTECTED_RESOURCE_PATH } from "./well-known.ts";
import { MERGED_SERVER } from "../config/merged-schema.ts";

export const SCOPE = "mcp";
export const SCOPES = ["mcp", "offline_access"] as const;
export const RESOURCE_NAME = "mcp-oauth-proxy";

/**
 * The two URLs of one server: Streamable HTTP (`/mcp/<name>`) and the legacy HTTP+SSE transport
 * (`/sse/<name>`). Each is a protected resource of its own for discovery; a token for either is
 * stored with the `/mcp` URL as its audience, so it works on both.
 */
export type Endpoint = "mcp" | "sse";

/**
 * The canonical URL of a server's endpoint. The `/mcp` URL is the token audience for the server;
 * the merged endpoint (`MERGED_SERVER`) is `/mcp` itself, an audience of its own.
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2
 */
export function resourceUrl(auth: AuthConfig, server: string, endpoint: Endpoint = "mcp"): string {
  return `${auth.publicUrl}${endpointPath(server, endpoint)}`;
}

/** `/mcp/<name>` or `/sse/<name>`; `/mcp` for the merged endpoint. */
function endpointPath(server: string, endpoint: Endpoint): string {
  return server === MERGED_SERVER ? "/mcp" : `/${endpoint}/${server}`;
}

/**
 * The path-inserted well-known URL of a resource's protected-resource metadata.
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.1
 */
export function resourceMetadataUrl(
  auth: AuthConfig,
  server: string | null,
  endpoint: Endpoint = "mcp",
): string {
  const suffix = server === null ? "" : endpointPath(server, endpoint);
  return `${auth.origin}${PROTECTED_RESOURCE_PATH}${pathOf(auth)}${suffix}`;
}

function pathOf(auth: AuthConfig): string {
  return new URL(auth.publicUrl).pathname.replace(/\/$/, "");
}

/**
 * The protected-resource metadata whose `resource` is the URL the well-known URL was built from.
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.3
 */
export function protectedResourceMetadata(
  auth: AuthConfig,
  server: string | null,
  endpoint: Endpoint = "mcp",
) {
  return {
    resource: server === null ? auth.publicUrl : resourceUrl(auth, server, endpoint),
    authorization_servers: [auth.publicUrl],
    scopes_supported: [SCOPE],
    bearer_methods_supported: ["header"],
    resource_name: RESOURCE_NAME,
  };
}

/**
 * The authorization-server metadata; `issuer` is byte-identical to the configured public URL.
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 */
export function authorizationServerMetadata(auth: AuthConfig) {
  const base = auth.publicUrl;
  const methods = ["none", "client_secret_post", "client_secret_basic"];
  return {
    issuer: base,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    registration_endpoint: `${base}/register`,
    revocation_endpoint: `${base}/revoke`,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: ["authorization_code", "refresh_token"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: methods,
    revocation_endpoint_auth_methods_supported: methods,
    scopes_supported: [...SCOPES],
    client_id_metadata_document_supported: true,
    authorization_response_iss_parameter_supported: true,
  };
}

/**
 * The `WWW-Authenticate` value of a 401 (or 403) from an MCP endpoint, pointing at the metadata
 * of the URL that was called. Without a token no `error` is sent; with a bad one, `invalid_token`.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 */
export function challenge(
  auth: AuthConfig,
  server: string,
  endpoint: Endpoint,
  error?: { code: "invalid_token" | "insufficient_scope"; description: string },
): string {
  const parts = [];
  if (error) {
    parts.push(
      `error="${error.code}"`,
      `error_description="${error.description.replace(/["\\]/g, "")}"`,
    );
  }
  parts.push(
    `resource_metadata="${resourceMetadataUrl(auth, server, endpoint)}"`,
    `scope="${SCOPE}"`,
  );
  return `Bearer ${parts.join(", ")}`;
}

/**
 * Canonicalises a resource indicator: lower-case scheme and host, no default port, no trailing
 * slash, no fragment. Returns null for anything that is not an absolute http(s) URL.
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2
 */
export function canonicalResource(text: string): string | null {
  // Whitespace or control characters anywhere make it unusable: URL parsing would drop some.
  // deno-lint-ignore no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(text) || text.includes("#")) return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.username || url.password) {
    return null;
  }
  const path = url.pathname === "/" ? "" : url.pathname.replace(/\/+$/, "");
  return `${url.origin}${path}${url.search}`;
}
