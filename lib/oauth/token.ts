/**
 * `POST /token`: the authorization_code and refresh_token grants (`POST /revoke` is revoke.ts).
 * Tokens are opaque and stored as SHA-256 hashes. A code is single-use, except that an
 * identical request within 30 s gets the same answer (ChatGPT redeems twice). Refresh tokens
 * rotate, with a grace window that returns the same successor; a replay after it revokes the
 * grant.
 * @see https://www.ietf.org/archive/id/draft-ietf-oauth-v2-1-13.html#section-4.3
 */
import { deriveKey, open, randomToken, seal, sha256, timingSafeEqual } from "../crypto.ts";
import type { CodeRecord, GrantRecord, TokenRecord } from "../store/store.ts";
import { earlierAnswer, oneAtATime } from "./code-replay.ts";
import { OAuthError, oauthJson, readForm } from "./errors.ts";
import type { OAuthService, ResolvedClient } from "./service.ts";

const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

/**
 * `POST /token`: the authorization_code and refresh_token grants.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 */
export async function handleToken(svc: OAuthService, req: Request): Promise<Response> {
  const form = await readForm(req, svc.bodyTimeoutMs);
  const client = await authenticateClient(svc, req, form);
  switch (form.get("grant_type")) {
    case "authorization_code":
      return await redeemCode(svc, client, form);
    case "refresh_token":
      return await refresh(svc, client, form);
    case null:
      throw new OAuthError("invalid_request", "grant_type is required");
    default:
      throw new OAuthError("unsupported_grant_type", "use authorization_code or refresh_token");
  }
}

/**
 * Client authentication: `none`, `client_secret_post` or `client_secret_basic`; a secret client
 * may use either secret method (Claude always posts). Failures are 401 `invalid_client`, which
 * makes clients register again.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 */
export async function authenticateClient(
  svc: OAuthService,
  req: Request,
  form: URLSearchParams,
): Promise<ResolvedClient> {
  const basic = parseBasic(req.headers.get("authorization"));
  const challenge = basic ? { "www-authenticate": 'Basic realm="mcp-oauth-proxy"' } : undefined;
  const bad = (description: string) =>
    new OAuthError("invalid_client", description, 401, challenge);
  const formId = form.get("client_id");
  if (basic && formId !== null && formId !== basic.id) {
    throw bad("client_id does not match the Basic credentials");
  }
  const clientId = basic?.id ?? formId;
  if (!clientId) throw bad("client authentication is required");
  let client: ResolvedClient;
  try {
    client = await svc.client(clientId);
  } catch (error) {
    if (error instanceof OAuthError) throw bad(error.description);
    throw error;
  }
  const secret = basic?.secret ?? form.get("client_secret");
  if (client.secretHash) {
    if (!secret || !timingSafeEqual(await sha256(secret), client.secretHash)) {
      throw bad("wrong client secret");
    }
  } else if (secret) {
    throw bad("this client has no secret");
  }
  return client;
}

function parseBasic(header: string | null): { id: string; secret: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header ?? "");
  if (!m) return null;
  let decoded: string;
  try {
    decoded = atob(m[1]);
  } catch {
    return null;
  }
  const i = decoded.indexOf(":");
  if (i < 0) return null;
  try {
    // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    return {
      id: decodeURIComponent(decoded.slice(0, i).replace(/\+/g, " ")),
      secret: decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, " ")),
    };
  } catch {
    return null;
  }
}

async function redeemCode(
  svc: OAuthService,
  client: ResolvedClient,
  form: URLSearchParams,
): Promise<Response> {
  const code = form.get("code");
  const verifier = form.get("code_verifier");
  if (!code) throw new OAuthError("invalid_request", "code is required");
  if (!verifier) throw new OAuthError("invalid_request", "code_verifier is required (PKCE)");
  const hash = await sha256(code);
  return await oneAtATime(hash, () => redeemOnce(svc, client, form, code, verifier, hash));
}

async function redeemOnce(
  svc: OAuthService,
  client: ResolvedClient,
  form: URLSearchParams,
  code: string,
  verifier: string,
  hash: string,
): Promise<Response> {
  const now = svc.now();
  const redirectUri = form.get("redirect_uri");
  // An identical request repeats every parameter that shapes the answer, `resource` included.
  const fingerprint = await sha256(
    JSON.stringify([client.clientId, code, verifier, redirectUri, form.get("resource")]),
  );
  const { first, code: record } = await svc.store.redeemCode(hash, now);
  if (!record || record.clientId !== client.clientId) {
    throw new OAuthError("invalid_grant", "the code is unknown, expired or for another client");
  }
  const redemption = { code, verifier, hash, fingerprint, redirectUri, now };
  if (!first) return await redeemAgain(svc, client, redemption, record);
  try {
    return await redeemFirst(svc, client, form, redemption, record);
  } catch (error) {
    // A refused first redemption spent the code too: its answer is the refusal, kept so that a
    // repeat (here or on another instance) is answered at once instead of waiting for tokens.
    if (error instanceof OAuthError) {
      await svc.store.putCodeAnswer(hash, { fingerprint, sealed: "", at: now, refused: true });
    }
    throw error;
  }
}

/** One presentation of a code at /token. */
interface Redemption {
  code: string;
  verifier: string;
  /** The code's SHA-256, its key in the store. */
  hash: string;
  /** What an identical repeat presents again. */
  fingerprint: string;
  redirectUri: string | null;
  now: number;
}

/** The key that seals a code's first answer: only the holder of code and verifier opens it. */
function answerKey({ code, verifier }: Redemption): Promise<CryptoKey> {
  return deriveKey(`${verifier}|${code}`, "code-replay");
}

/**
 * A code's first redemption: the checks of RFC 6749 §4.1.3 and RFC 7636 §4.6, then tokens; the
 * answer is kept, sealed, for an identical repeat.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
 */
async function redeemFirst(
  svc: OAuthService,
  client: ResolvedClient,
  form: URLSearchParams,
  redemption: Redemption,
  record: CodeRecord,
): Promise<Response> {
  const { verifier, hash, fingerprint, redirectUri, now } = redemption;
  if (record.expiresAt <= now) throw new OAuthError("invalid_grant", "the code expired");
  // RFC 7636 §4.6: S256 is BASE64URL(SHA256(ASCII(code_verifier))), which is what sha256 gives.
  if (!VERIFIER.test(verifier) || await sha256(verifier) !== record.challenge) {
    throw new OAuthError("invalid_grant", "code_verifier does not match the code_challenge");
  }
  if (redirectUri !== null && redirectUri !== record.redirectUri) {
    throw new OAuthError("invalid_grant", "redirect_uri does not match the authorization request");
  }
  // RFC 8707 §2.2: a narrower `resource` at /token gets a token for that resource only.
  const audience = checkResource(svc, form, record.resource);
  const grant = await liveGrant(svc, record.grantId, now);
  await admitAudience(svc, grant, audience, "at code exchange");
  const body = await issue(svc, grant, record.scope, audience, now);
  await svc.store.putCodeAnswer(hash, {
    fingerprint,
    sealed: await seal(await answerKey(redemption), JSON.stringify(body)),
    at: now,
  });
  svc.metrics.tokens.inc({ grant: "authorization_code" });
  svc.log.info("tokens issued", {
    user_id: grant.userId,
    client: client.clientId,
    grant: grant.id.slice(0, 8),
  });
  return oauthJson(body);
}

/**
 * A spent code presented again: an identical request within the reuse window gets the first
 * answer again (a client's double POST); anything else revokes the grant (RFC 6749 §4.1.2).
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 */
async function redeemAgain(
  svc: OAuthService,
  client: ResolvedClient,
  redemption: Redemption,
  record: CodeRecord,
): Promise<Response> {
  const { hash, fingerprint, now } = redemption;
  const earlier = await earlierAnswer(svc, hash, record);
  if (
    earlier && !earlier.refused && now - earlier.at <= svc.auth.oauth.codeReuseWindowMs &&
    earlier.fingerprint === fingerprint
  ) {
    // Tokens revoked meanwhile (another reuse, /revoke, a refresh replay) are not handed out.
    await liveGrant(svc, record.grantId, now);
    const body = await open(await answerKey(redemption), earlier.sealed);
    if (body) return oauthJson(JSON.parse(body));
  }
  await svc.store.revokeGrant(record.grantId, "authorization code reused", now);
  svc.log.warn("authorization code reused; its grant was revoked", { client: client.clientId });
  throw new OAuthError(
    "invalid_grant",
    "the code was already used; tokens issued from it are revoked",
  );
}

async function refresh(
  svc: OAuthService,
  client: ResolvedClient,
  form: URLSearchParams,
): Promise<Response> {
  const presented = form.get("refresh_token");
  if (!presented) throw new OAuthError("invalid_request", "refresh_token is required");
  const hash = await sha256(presented);
  const now = svc.now();
  const record = await svc.store.getToken(hash);
  if (
    !record || record.kind !== "refresh" || record.clientId !== client.clientId ||
    record.expiresAt <= now
  ) {
    throw new OAuthError("invalid_grant", "the refresh token is unknown, expired or revoked");
  }
  const grant = await liveGrant(svc, record.grantId, now);
  const scope = narrowScope(form.get("scope"), grant.scope);
  const resource = form.get("resource") === null
    ? record.resource
    : checkResource(svc, form, grant.resource);
  if (!await svc.admit(grant.id, grant.userId, grant.login, "at refresh", 0)) {
    throw new OAuthError("invalid_grant", "this account is no longer allowed");
  }
  await admitAudience(svc, grant, resource, "at refresh", 0);
  const key = await deriveKey(presented, "refresh-successor");
  if (record.successor) return await replayRefresh(svc, record, key, grant, now);
  const body = await issue(svc, grant, scope, resource, now);
  const successorHash = await sha256(body.refresh_token);
  const won = await svc.store.setSuccessor(hash, {
    refreshHash: successorHash,
    sealed: await seal(key, JSON.stringify(body)),
    issuedAt: now,
  });
  if (!won.ok) {
    // A concurrent refresh with the same token won: answer with its successor, drop ours.
    await svc.store.revokeTokens([await sha256(body.access_token), successorHash], grant.id);
    if (won.current?.successor) return await replayRefresh(svc, won.current, key, grant, now);
    throw new OAuthError("invalid_grant", "the refresh token is no longer valid");
  }
  svc.metrics.tokens.inc({ grant: "refresh_token" });
  return oauthJson(body);
}

/**
 * A refresh token that already has a successor: within the grace window (until the successor
 * is first used, or 60 s, whichever is later) the same successor pair is returned; after it,
 * the reuse is a replay and the whole grant is revoked.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 */
async function replayRefresh(
  svc: OAuthService,
  record: TokenRecord,
  key: CryptoKey,
  grant: GrantRecord,
  now: number,
): Promise<Response> {
  const successor = record.successor!;
  const next = await svc.store.getToken(successor.refreshHash);
  const successorUsed = !next || next.successor !== undefined;
  if (!successorUsed || now - successor.issuedAt < svc.auth.oauth.refreshGraceMs) {
    const body = await open(key, successor.sealed);
    if (body) return oauthJson(JSON.parse(body));
  }
  await svc.store.revokeGrant(grant.id, "refresh token replayed", now);
  svc.log.warn("refresh token replayed after its successor was used; grant revoked", {
    user_id: grant.userId,
    client: grant.clientId,
  });
  throw new OAuthError("invalid_grant", "the refresh token was already used; the grant is revoked");
}

/** Issues an access token and a refresh token under a grant. */
async function issue(
  svc: OAuthService,
  grant: GrantRecord,
  scope: string,
  resource: string,
  now: number,
) {
  const { accessTokenTtlMs, refreshTokenTtlMs } = svc.auth.oauth;
  const access = randomToken("mop_at_");
  const refreshToken = randomToken("mop_rt_");
  const accessExpires = Math.min(now + accessTokenTtlMs, grant.expiresAt);
  const base = {
    grantId: grant.id,
    clientId: grant.clientId,
    userId: grant.userId,
    scope,
    resource,
    issuedAt: now,
  };
  await svc.store.putToken(await sha256(access), {
    ...base,
    kind: "access",
    expiresAt: accessExpires,
  });
  await svc.store.putToken(await sha256(refreshToken), {
    ...base,
    kind: "refresh",
    expiresAt: Math.min(now + refreshTokenTtlMs, grant.expiresAt),
  });
  return {
    access_token: access,
    token_type: "Bearer",
    expires_in: Math.max(1, Math.floor((accessExpires - now) / 1000)),
    refresh_token: refreshToken,
    scope,
  };
}

async function liveGrant(svc: OAuthService, id: string, now: number): Promise<GrantRecord> {
  const grant = await svc.store.getGrant(id);
  if (!grant || grant.revokedAt || grant.expiresAt <= now) {
    throw new OAuthError("invalid_grant", "the grant was revoked or expired; authorize again");
  }
  if (!(await svc.store.getClient(grant.clientId)) && !grant.clientId.startsWith("http")) {
    throw new OAuthError("invalid_grant", "the client no longer exists; authorize again");
  }
  return grant;
}

function narrowScope(requested: string | null, granted: string): string {
  if (requested === null) return granted;
  const allowed = new Set(granted.split(" "));
  const wanted = requested.split(" ").filter(Boolean);
  if (wanted.length === 0 || wanted.some((s) => !allowed.has(s))) {
    throw new OAuthError("invalid_scope", "the scope exceeds what was granted");
  }
  return wanted.join(" ");
}

/**
 * The audience of the tokens to issue: the granted one, or the `resource` sent to /token when it
 * equals the granted audience or narrows the whole origin to one server.
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2.2
 */
function checkResource(svc: OAuthService, form: URLSearchParams, granted: string): string {
  const sent = form.get("resource");
  if (sent === null) return granted;
  const audience = svc.audience(sent);
  if (!audience || (audience !== granted && granted !== svc.auth.publicUrl)) {
    throw new OAuthError("invalid_target", "resource is not within the grant");
  }
  return audience;
}

/**
 * The server a token is for must admit its holder (the server's own `allow`). A grant for that
 * server alone is refused like a person the allow-list dropped (`invalid_grant`, the grant
 * revoked); one server of a grant for the whole origin is refused as an unknown resource is.
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2.2
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
async function admitAudience(
  svc: OAuthService,
  grant: GrantRecord,
  audience: string,
  when: "at refresh" | "at code exchange",
  maxAgeMs?: number,
): Promise<void> {
  const server = svc.serverOf(audience);
  if (server === null || await svc.admitServer(grant, server, when, maxAgeMs)) return;
  if (grant.resource === audience) {
    throw new OAuthError("invalid_grant", "this account is no longer allowed");
  }
  throw new OAuthError("invalid_target", "resource is not within the grant");
}
