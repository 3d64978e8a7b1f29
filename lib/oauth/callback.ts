/**
 * `GET /auth/callback`: GitHub sends the browser back here. The upstream state is single-use
 * and must come with the transaction cookie of the browser that approved. Then three steps:
 * exchange the code with GitHub, identify the user, and let the allow-list decide. An allowed
 * user's client gets a code; every refusal goes through one {@link refuse}: `access_denied`
 * after a page that says which GitHub account was used, or an error redirect when GitHub failed.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 */
import { base64url, randomBytes, randomToken, sha256 } from "../crypto.ts";
import { join, markup } from "../html.ts";
import type { GrantRecord, TransactionRecord } from "../store/store.ts";
import { readCookie, setCookie, transactionCookie } from "./cookies.ts";
import { errorPage, page } from "./html.ts";
import { appendParams } from "./redirect.ts";
import { approval, csrfToken, redirectTo, UNKNOWN_RESOURCE, withState } from "./authorize.ts";
import { GitHubError, type GitHubToken, type GitHubUser } from "./github.ts";
import type { Verdict } from "./policy.ts";
import type { OAuthService } from "./service.ts";

const CODE_TTL_MS = 5 * 60_000;

/** A transaction the person approved: it carries the upstream state and PKCE verifier. */
type ApprovedTransaction = TransactionRecord & Required<Pick<TransactionRecord, "upstream">>;

/** A signed-in GitHub user and the token that proved it. */
interface SignIn {
  token: GitHubToken;
  user: GitHubUser;
}

/**
 * Why a sign-in does not give the client a code: what is counted and logged, the OAuth error
 * sent back to the client, and, when the allow-list said no, the account that was refused.
 */
export interface Refusal {
  outcome: "failed" | "refused";
  log: string;
  fields: Record<string, string | number>;
  error: "access_denied" | "server_error" | "temporarily_unavailable" | "invalid_target";
  description: string;
  /** A GitHub token the proxy no longer needs, revoked on the way out. */
  githubToken?: string;
  /** Set when the allow-list refused this account: the person sees a page naming it. */
  refusedUser?: GitHubUser;
}

/**
 * `GET /auth/callback`: exchange → identify → decide.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2
 */
export async function handleCallback(svc: OAuthService, req: Request): Promise<Response> {
  const url = new URL(req.url);
  const state = url.searchParams.get("state") ?? "";
  const txn = await takeTransaction(svc, req, state);
  if (txn instanceof Response) return txn;
  const signIn = await exchangeAndIdentify(svc, txn, url, state);
  if ("error" in signIn) return refuse(svc, txn, signIn);
  const verdict = await svc.policy.atLogin(signIn.user, signIn.token.accessToken);
  if (!verdict.allowed) return refuse(svc, txn, policyRefusal(verdict, signIn, txn.clientId));
  const server = svc.serverOf(txn.resource);
  if (server !== null) {
    const own = await svc.access.atLogin(signIn.user, signIn.token.accessToken, server);
    if (!own.allowed) return refuse(svc, txn, serverRefusal(own, signIn, txn.clientId, server));
  }
  return await allow(svc, txn, signIn, verdict.via);
}

/** The approved transaction the state names, if it was started in this browser. */
async function takeTransaction(
  svc: OAuthService,
  req: Request,
  state: string,
): Promise<ApprovedTransaction | Response> {
  const txn = state ? await svc.store.takeUpstreamState(state, svc.now()) : null;
  if (!isApproved(txn)) {
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
  return txn;
}

function isApproved(txn: TransactionRecord | null): txn is ApprovedTransaction {
  return !!txn?.upstream;
}

/** Exchanges GitHub's code for a token and asks GitHub whose it is. */
async function exchangeAndIdentify(
  svc: OAuthService,
  txn: ApprovedTransaction,
  url: URL,
  state: string,
): Promise<SignIn | Refusal> {
  // oauth4webapi validates the state and GitHub's own error parameter.
  const callback = new URL(`${svc.callbackUrl}${url.search}`);
  try {
    const token = await svc.github.exchangeCode(
      callback,
      state,
      svc.callbackUrl,
      txn.upstream.verifier,
    );
    return { token, user: await svc.github.user(token.accessToken) };
  } catch (error) {
    return gitHubRefusal(error, txn.clientId);
  }
}

/**
 * GitHub did not complete the sign-in: `access_denied` when the person declined there,
 * `server_error` otherwise.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 */
export function gitHubRefusal(error: unknown, clientId: string): Refusal {
  const gitHub = error instanceof GitHubError ? error : null;
  return {
    outcome: "failed",
    log: "GitHub sign-in failed",
    fields: { client: clientId, reason: gitHub?.message ?? "GitHub could not be reached" },
    error: gitHub?.code === "access_denied" ? "access_denied" : "server_error",
    description: "GitHub sign-in did not complete",
  };
}

/**
 * The allow-list said no: `temporarily_unavailable` when GitHub did not answer the membership
 * check (no decision, so no "not allowed" page), otherwise `access_denied` and a page naming the
 * account. Either way the GitHub token is revoked.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 */
export function policyRefusal(
  verdict: Verdict & { allowed: false },
  signIn: SignIn,
  clientId: string,
): Refusal {
  const { user, token } = signIn;
  const fields = { user_id: user.id, login: user.login, client: clientId, reason: verdict.reason };
  if (verdict.transient) {
    return {
      outcome: "failed",
      log: "sign-in failed: GitHub did not answer the membership check",
      fields,
      error: "temporarily_unavailable",
      description: "GitHub did not answer the membership check; try again later",
      githubToken: token.accessToken,
    };
  }
  return {
    outcome: "refused",
    log: "sign-in refused: not on the allow-list",
    fields,
    error: "access_denied",
    description: "this GitHub account is not allowed",
    githubToken: token.accessToken,
    refusedUser: user,
  };
}

/**
 * The requested server's own `allow` said no: the client gets exactly the error an unknown
 * `resource` gets at /authorize (`invalid_target`), so the answer does not tell that the server
 * exists; a GitHub outage is `temporarily_unavailable` as for the global allow-list.
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2
 */
export function serverRefusal(
  verdict: Verdict & { allowed: false },
  signIn: SignIn,
  clientId: string,
  server: string,
): Refusal {
  if (verdict.transient) return policyRefusal(verdict, signIn, clientId);
  const { user, token } = signIn;
  return {
    outcome: "refused",
    log: `sign-in refused: not on mcpServers.${server}.allow`,
    fields: {
      user_id: user.id,
      login: user.login,
      client: clientId,
      server,
      reason: verdict.reason,
    },
    error: "invalid_target",
    description: UNKNOWN_RESOURCE,
    githubToken: token.accessToken,
  };
}

/** The one way out without a code: counted, logged, the GitHub token revoked, the client told. */
function refuse(svc: OAuthService, txn: TransactionRecord, refusal: Refusal): Response {
  svc.metrics.logins.inc({ outcome: refusal.outcome });
  svc.log.warn(refusal.log, refusal.fields);
  if (refusal.githubToken) svc.github.revokeToken(refusal.githubToken).catch(() => {});
  const target = appendParams(
    txn.redirectUri,
    withState({ error: refusal.error, error_description: refusal.description }, txn.state, svc),
  );
  const response = refusal.refusedUser
    ? notAllowedPage(refusal.refusedUser, target)
    : redirectTo(target);
  return withCookies(response, [setCookie(transactionCookie(txn.id), "", 0)]);
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

/** The allow-list admitted the user: a grant, a single-use code, and the approval cookie. */
async function allow(
  svc: OAuthService,
  txn: TransactionRecord,
  { token, user }: SignIn,
  via: string,
): Promise<Response> {
  const grant = await createGrant(svc, txn, user);
  if (svc.needsMembership) await svc.keepGitHubToken(user.id, token);
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
    via,
  });
  const back = appendParams(txn.redirectUri, withState({ code }, txn.state, svc));
  return withCookies(redirectTo(back), [setCookie(transactionCookie(txn.id), "", 0), ok.header]);
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

function withCookies(response: Response, cookies: string[]): Response {
  for (const c of cookies) response.headers.append("set-cookie", c);
  return response;
}
