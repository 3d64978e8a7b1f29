/**
 * The resource-server check on every MCP request: a Bearer token from the Authorization header
 * only, looked up by hash, unexpired and unrevoked, issued for this endpoint (or the whole
 * origin), and held by someone the allow-list, and the server's own `allow`, still admit. What the store says about a token is
 * cached in memory (lib/oauth/access-cache.ts), so a request costs no store read.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 */
import { sha256 } from "../crypto.ts";
import type { ServerConfig } from "../config/schema.ts";
import type { Identity } from "../router/router.ts";
import { challenge, type Endpoint, resourceUrl, SCOPE } from "./metadata.ts";
import type { OAuthService } from "./service.ts";
import { notFound } from "../mcp/http.ts";

const BEARER = /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)\s*$/i;

/**
 * Resolves the caller of an MCP endpoint, or the 401/403 response that refuses them.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2
 * @see https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization#token-handling
 */
export async function authenticateBearer(
  svc: OAuthService,
  req: Request,
  server: ServerConfig,
): Promise<Identity | Response> {
  const deny = (description?: string, status: 401 | 403 = 401) =>
    refuse(req, svc, server, status, description);
  const header = req.headers.get("authorization");
  // A token in the query string is never looked at (RFC 6750 §2.3 is not supported).
  if (!header) return deny();
  const m = BEARER.exec(header);
  if (!m) {
    return deny("the Authorization header is not a Bearer token");
  }
  const token = m[1];
  if (!token.startsWith("mop_at_")) {
    // GitHub tokens and refresh tokens are never accepted here.
    return deny("not an access token issued by this proxy");
  }
  const now = svc.now();
  const hash = await sha256(token);
  let access = svc.accessCache.get(hash, now);
  if (!access) {
    const generation = svc.accessCache.generation;
    const record = await svc.store.getToken(hash);
    if (!record || record.kind !== "access" || record.expiresAt <= now) {
      return deny("the token is unknown, expired or revoked");
    }
    const grant = await svc.store.getGrant(record.grantId);
    if (!grant || grant.revokedAt || grant.expiresAt <= now) {
      return deny("the grant was revoked or expired");
    }
    access = {
      grantId: grant.id,
      clientId: grant.clientId,
      userId: grant.userId,
      login: grant.login,
      scope: record.scope,
      resource: record.resource,
      expiresAt: Math.min(record.expiresAt, grant.expiresAt),
    };
    svc.accessCache.set(hash, access, generation);
  }
  if (
    access.resource !== svc.auth.publicUrl && access.resource !== resourceUrl(svc.auth, server.name)
  ) {
    return deny("the token was issued for another resource");
  }
  if (!access.scope.split(" ").includes(SCOPE)) {
    return deny("the token lacks the mcp scope", 403);
  }
  const allowed = await svc.admit(access.grantId, access.userId, access.login, "on use");
  if (!allowed) {
    return deny("this account is no longer allowed");
  }
  const grant = { id: access.grantId, ...access };
  if (!await svc.admitServer(grant, server.name, "on use")) {
    // Not for this person: the server answers as an unknown one would (no hint it exists).
    return notFound();
  }
  return {
    key: `github:${access.userId}`,
    userId: access.userId,
    login: access.login,
    clientId: access.clientId,
  };
}

/** The legacy HTTP+SSE endpoints (`/sse/<name>` and its `/messages`), after any secret path. */
const LEGACY = /\/sse\/[^/]+(?:\/messages)?$/;

/**
 * The 401 (`invalid_token`, or no error without a token) or 403 (`insufficient_scope`) answer.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
function refuse(
  req: Request,
  svc: OAuthService,
  server: ServerConfig,
  status: 401 | 403,
  description?: string,
): Response {
  const code = description === undefined
    ? undefined
    : status === 403
    ? "insufficient_scope"
    : "invalid_token";
  // The challenge names the metadata of the URL the client called (RFC 9728 §3.3 and §5.1).
  const endpoint: Endpoint = LEGACY.test(new URL(req.url).pathname) ? "sse" : "mcp";
  const body = code ? { error: code, error_description: description } : { error: "unauthorized" };
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json",
      "cache-control": "no-store",
      "www-authenticate": challenge(
        svc.auth,
        server.name,
        endpoint,
        code ? { code, description: description! } : undefined,
      ),
    },
  });
}
