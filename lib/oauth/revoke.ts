/**
 * Token revocation: a client ends a token it holds (RFC 7009).
 * @see https://www.rfc-editor.org/rfc/rfc7009
 */
import { sha256 } from "../crypto.ts";
import { OAuthError, oauthJson, readForm } from "./errors.ts";
import type { OAuthService } from "./service.ts";
import { authenticateClient } from "./token.ts";

/**
 * `POST /revoke`: always 200 for unknown tokens. Revoking a refresh token ends its grant.
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2
 */
export async function handleRevoke(svc: OAuthService, req: Request): Promise<Response> {
  const form = await readForm(req, svc.bodyTimeoutMs);
  const client = await authenticateClient(svc, req, form);
  const token = form.get("token");
  if (!token) throw new OAuthError("invalid_request", "token is required");
  const hash = await sha256(token);
  const record = await svc.store.getToken(hash);
  if (record && record.clientId === client.clientId) {
    if (record.kind === "refresh") {
      await svc.store.revokeGrant(record.grantId, "revoked by the client", svc.now());
    } else {
      await svc.store.revokeTokens([hash], record.grantId);
    }
    svc.forgetUser(record.userId);
    svc.log.info("token revoked by the client", { client: client.clientId, kind: record.kind });
  }
  return oauthJson({});
}
