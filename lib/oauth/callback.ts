/**
 * `GET /auth/callback`: GitHub sends the browser back here. The upstream state is single-use
 * and must come with the transaction cookie of the browser that approved. The GitHub user is
 * checked against the allow-list; an allowed user's client gets a code, a refused one
 * `access_denied` after a page that says which GitHub account was used.
 */
import { base64url, randomBytes, randomToken, sha256 } from "../crypto.ts";
import type { GrantRecord, TransactionRecord } from "../store/kv.ts";
import { readCookie, setCookie, transactionCookie } from "./cookies.ts";
import { join, markup } from "../html.ts";
import { errorPage, page } from "./html.ts";
import { appendParams } from "./redirect.ts";
import { approval, csrfToken, redirectTo, withState } from "./authorize.ts";
import { GitHubError, type GitHubToken, type GitHubUser } from "./github.ts";
import type { OAuthService } from "./service.ts";

const CODE_TTL_MS = 5 * 60_000;

/** `GET /auth/callback`. */
export async function handleCallback(svc: OAuthService, req: Request): Promise<Response> {
  const url = new URL(req.url);
  const state = url.searchParams.get("state") ?? "";
  const txn = state ? await svc.store.takeUpstreamState(state, svc.now()) : null;
  if (!txn?.upstream) {
    return errorPage(
      "This sign-in expired",
      "The sign-in link expired or was already used. Start connecting again from your application.",
    );
  }
  if (readCookie(req, transactionCookie(txn.id)) !== await csrfToken(svc, txn)) {
    return errorPage(
      "Sign-in refused",
      "This sign-in was started in another browser. Start connecting again from your application, in this browser.",
      403,
    );
  }
  const clearTxn = setCookie(transactionCookie(txn.id), "", 0);
  const back = (params: Record<string, string>) =>
    appendParams(txn.redirectUri, withState(params, txn.state, svc));

  // oauth4webapi validates the state and GitHub's own error parameter.
  const callback = new URL(`${svc.callbackUrl}${url.search}`);
  let token: GitHubToken;
  let user: GitHubUser;
  try {
    token = await svc.github.exchangeCode(callback, state, svc.callbackUrl, txn.upstream.verifier);
    user = await svc.github.user(token.accessToken);
  } catch (error) {
    const reason = error instanceof GitHubError ? error.message : "GitHub could not be reached";
    svc.log.warn("GitHub sign-in failed", { client: txn.clientId, reason });
    svc.metrics.logins.inc({ outcome: "failed" });
    const code = error instanceof GitHubError && error.code === "access_denied"
      ? "access_denied"
      : "server_error";
    return withCookies(
      redirectTo(back({ error: code, error_description: "GitHub sign-in did not complete" })),
      [
        clearTxn,
      ],
    );
  }

  const verdict = await svc.policy.atLogin(user, token.accessToken);
  if (!verdict.allowed && verdict.transient) {
    // GitHub did not answer the membership check: no decision, so no "not allowed" page.
    svc.metrics.logins.inc({ outcome: "failed" });
    svc.log.warn("sign-in failed: GitHub did not answer the membership check", {
      user_id: user.id,
      login: user.login,
      client: txn.clientId,
      reason: verdict.reason,
    });
    svc.github.revokeToken(token.accessToken).catch(() => {});
    const description = "GitHub did not answer the membership check; try again later";
    return withCookies(
      redirectTo(back({ error: "temporarily_unavailable", error_description: description })),
      [clearTxn],
    );
  }
  if (!verdict.allowed) {
    svc.metrics.logins.inc({ outcome: "refused" });
    svc.log.warn("sign-in refused: not on the allow-list", {
      user_id: user.id,
      login: user.login,
      client: txn.clientId,
      reason: verdict.reason,
    });
    svc.github.revokeToken(token.accessToken).catch(() => {});
    const target = back({
      error: "access_denied",
      error_description: "this GitHub account is not allowed",
    });
    return withCookies(
      notAllowedPage(user, target),
      [clearTxn],
    );
  }

  const grant = await createGrant(svc, txn, user);
  if (svc.policy.needsMembership) await svc.keepGitHubToken(user.id, token);
  else svc.github.revokeToken(token.accessToken).catch(() => {}); // Identity was all it was for.
  const code = randomToken("mop_code_");
  await svc.store.putCode(await sha256(code), {
    grantId: grant.id,
    clientId: txn.clientId,
    redirectUri: txn.redirectUri,
    challenge: txn.challenge,
    scope: txn.scope,
    resource: txn.resource,
    userId: user.id,
    expiresAt: svc.now() + CODE_TTL_MS,
  });
  const client = await svc.client(txn.clientId);
  const ok = await approval(svc, client, txn.redirectUri);
  svc.metrics.logins.inc({ outcome: "allowed" });
  svc.log.info("sign-in allowed", {
    user_id: user.id,
    login: user.login,
    client: txn.clientId,
    via: verdict.via,
  });
  return withCookies(redirectTo(back({ code })), [clearTxn, ok.header]);
}

async function createGrant(
  svc: OAuthService,
  txn: TransactionRecord,
  user: GitHubUser,
): Promise<GrantRecord> {
  const now = svc.now();
  const grant: GrantRecord = {
    id: base64url(randomBytes(16)),
    clientId: txn.clientId,
    redirectUri: txn.redirectUri,
    userId: user.id,
    login: user.login,
    scope: txn.scope,
    resource: txn.resource,
    createdAt: now,
    expiresAt: now + svc.auth.oauth.grantTtlMs,
  };
  await svc.store.putGrant(grant);
  await svc.store.putConsent({
    userId: user.id,
    login: user.login,
    clientId: txn.clientId,
    redirectUri: txn.redirectUri,
    approvedAt: now,
  });
  const record = await svc.store.getClient(txn.clientId);
  if (record && !record.grantedAt) await svc.store.putClient({ ...record, grantedAt: now });
  return grant;
}

/** Which GitHub account was refused, and the way back to the application. */
function notAllowedPage(user: GitHubUser, target: string): Response {
  const parts = [
    markup`<p>You signed in to GitHub as <strong>@${user.login}</strong> (id ${user.id}). `,
    markup`This account is not on this proxy's allow-list, so it cannot use these MCP servers.</p>`,
    markup`<p>If that is the wrong GitHub account, sign out of GitHub and connect again. `,
    markup`Otherwise ask the owner of this proxy to add you.</p>`,
    markup`<p><a href="${target}">Return to the application</a></p>`,
  ];
  return page("Not allowed", join(parts, ""), 403);
}

function withCookies(response: Response, cookies: string[]): Response {
  for (const c of cookies) response.headers.append("set-cookie", c);
  return response;
}
