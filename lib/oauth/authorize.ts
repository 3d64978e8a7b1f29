/**
 * `GET /authorize` and the consent step (`POST /consent`). The client and redirect URI are
 * checked first (errors shown, never redirected: RFC 6749 §4.1.2.1), then
 * everything else (errors redirected with `state` and `iss`). Consent comes before GitHub.
 * @see https://www.ietf.org/archive/id/draft-ietf-oauth-v2-1-13.html#section-4.1.1
 */
import { base64url, randomBytes, randomToken } from "../crypto.ts";
import type { TransactionRecord } from "../store/store.ts";
import * as oauth from "oauth4webapi";
import {
  approvalCookie,
  BROWSER_COOKIE,
  readCookie,
  setCookie,
  transactionCookie,
} from "./cookies.ts";
import { OAuthError, readText } from "./errors.ts";
import { errorPage } from "./html.ts";
import { consentPage, unknownClientPage } from "./consent-page.ts";
import { appendParams } from "./redirect.ts";
import { SCOPES } from "./metadata.ts";
import type { OAuthService, ResolvedClient } from "./service.ts";

const TXN_TTL_MS = 10 * 60_000;
const APPROVAL_TTL_S = 30 * 86_400;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const MAX_STATE = 2048;
const BROWSER_NONCE = /^[A-Za-z0-9_-]{22,64}$/;

/**
 * A check whose refusal is shown to the person as a page, never redirected: until the client and
 * its redirect URI are known, the redirect URI cannot be trusted.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 */
type ShownCheck = (request: AuthorizeRequest) => Promise<Response | null> | Response | null;

/** The query of an authorization request, and its client, looked up once when first needed. */
interface AuthorizeRequest {
  svc: OAuthService;
  q: URLSearchParams;
  client(): Promise<ResolvedClient | OAuthError>;
}

/** The checks whose refusals are shown, in order: the first refusal wins. */
const SHOWN_CHECKS: readonly ShownCheck[] = [
  ({ q }) => {
    // RFC 6749 §3.1: parameters must not be sent more than once (RFC 8707 allows `resource`).
    const repeated = [...new Set(q.keys())].find((k) => k !== "resource" && q.getAll(k).length > 1);
    return repeated === undefined
      ? null
      : errorPage("Invalid request", `The parameter "${repeated}" appears more than once.`);
  },
  ({ q }) => q.get("client_id") ? null : errorPage("Invalid request", "client_id is missing."),
  async ({ svc, q, client }) => {
    const found = await client();
    return found instanceof OAuthError
      ? unknownClientPage(svc, q.get("client_id")!, found.description)
      : null;
  },
  ({ q }) =>
    q.get("redirect_uri") ? null : errorPage("Invalid request", "redirect_uri is missing."),
  // The client was found: the check before this one refused otherwise.
  async ({ svc, q, client }) =>
    svc.redirectAllowed(await client() as ResolvedClient, q.get("redirect_uri")!)
      ? null
      : errorPage(
        "Invalid redirect URI",
        "The redirect_uri is not registered for this client, so the proxy will not send you there.",
      ),
];

/** The refusal of a `resource` that names no endpoint of this proxy (or none the person may use). */
export const UNKNOWN_RESOURCE = "resource is not an MCP endpoint of this proxy";

/** An error redirected to the client: the OAuth error code and its description. */
export type RedirectedError = [code: string, description: string];

/** A check whose refusal goes back to the client's (verified) redirect URI. */
export type RedirectedCheck = (
  q: URLSearchParams,
  audience: (resource: string | null) => string | null,
) => RedirectedError | null;

/**
 * The checks whose refusals are redirected to the client with `state` and `iss`, in order.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.4.1
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2
 */
export const REDIRECTED_CHECKS: readonly RedirectedCheck[] = [
  (q) =>
    (q.get("state")?.length ?? 0) > MAX_STATE ? ["invalid_request", "state is too long"] : null,
  (q) =>
    q.get("response_type") === "code"
      ? null
      : ["unsupported_response_type", "only response_type=code is supported"],
  (q) => q.get("code_challenge") ? null : ["invalid_request", "code_challenge is required (PKCE)"],
  (q) =>
    q.get("code_challenge_method") === "S256"
      ? null
      : ["invalid_request", "code_challenge_method must be S256"],
  (q) =>
    CHALLENGE.test(q.get("code_challenge")!)
      ? null
      : ["invalid_request", "code_challenge is malformed"],
  (q) => requestedScope(q) ? null : ["invalid_scope", "no supported scope requested (use mcp)"],
  (q) =>
    q.getAll("resource").length > 1
      ? ["invalid_target", "only one resource may be requested"]
      : null,
  (q, audience) => audience(q.get("resource")) ? null : ["invalid_target", UNKNOWN_RESOURCE],
];

/**
 * The first refusal of `checks` for this request, or null when it passes them all.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 */
export function firstRefusal(
  q: URLSearchParams,
  audience: (resource: string | null) => string | null,
  checks: readonly RedirectedCheck[] = REDIRECTED_CHECKS,
): RedirectedError | null {
  for (const check of checks) {
    const refusal = check(q, audience);
    if (refusal) return refusal;
  }
  return null;
}

/** The supported scopes requested (default `mcp`, unknown ones dropped), or "" for none. */
function requestedScope(q: URLSearchParams): string {
  const requested = (q.get("scope") ?? "mcp").split(" ").filter(Boolean);
  return [...new Set(requested.filter((s) => (SCOPES as readonly string[]).includes(s)))].join(
    " ",
  );
}

/**
 * `GET /authorize`: the shown checks, then the redirected ones, then the transaction, and
 * consent (or straight to GitHub when this browser already approved this client).
 * @see https://www.ietf.org/archive/id/draft-ietf-oauth-v2-1-13.html#section-4.1.1
 */
export async function handleAuthorize(svc: OAuthService, req: Request): Promise<Response> {
  const q = new URL(req.url).searchParams;
  let found: Promise<ResolvedClient | OAuthError> | undefined;
  const client = () =>
    found ??= svc.client(q.get("client_id")!).catch((error) =>
      error instanceof OAuthError ? error : new OAuthError("invalid_client", "unknown client")
    );
  for (const check of SHOWN_CHECKS) {
    const refusal = await check({ svc, q, client });
    if (refusal) return refusal;
  }
  const redirectUri = q.get("redirect_uri")!;
  const state = q.get("state");
  const refusal = firstRefusal(q, (resource) => svc.audience(resource));
  if (refusal) {
    const [error, error_description] = refusal;
    return redirectTo(
      appendParams(redirectUri, withState({ error, error_description }, state, svc)),
    );
  }
  return await startTransaction(svc, req, await client() as ResolvedClient, q);
}

/**
 * The transaction for a valid request, and the consent page (or GitHub, when approved before).
 * The transaction id is derived from the request and this browser's random binding cookie, so
 * a reload, a duplicate GET or a prefetch in one browser lands on the same transaction and the
 * same CSRF token, while another browser loading the same URL (an attacker reading the form)
 * gets a transaction and token of its own.
 */
async function startTransaction(
  svc: OAuthService,
  req: Request,
  client: ResolvedClient,
  q: URLSearchParams,
): Promise<Response> {
  const sentNonce = readCookie(req, BROWSER_COOKIE);
  const nonce = sentNonce && BROWSER_NONCE.test(sentNonce) ? sentNonce : base64url(randomBytes(16));
  const browserCookie = setCookie(BROWSER_COOKIE, nonce, TXN_TTL_MS / 1000);
  const txn = await transaction(svc, nonce, {
    clientId: client.clientId,
    redirectUri: q.get("redirect_uri")!,
    challenge: q.get("code_challenge")!,
    state: q.get("state"),
    scope: requestedScope(q),
    resource: svc.audience(q.get("resource"))!,
  });
  const csrf = await csrfToken(svc, txn);
  const txnCookie = setCookie(transactionCookie(txn.id), csrf, TXN_TTL_MS / 1000);
  if (await hasApproval(svc, req, client, txn.redirectUri)) {
    return toGitHub(svc, txn, [browserCookie, txnCookie]);
  }
  const response = consentPage(svc, { client, txn, csrf, redirectUri: txn.redirectUri }, {
    "set-cookie": browserCookie,
  });
  response.headers.append("set-cookie", txnCookie);
  return response;
}

/** What an authorization request asks for, as stored in its transaction. */
type Asked = Pick<
  TransactionRecord,
  "clientId" | "redirectUri" | "challenge" | "state" | "scope" | "resource"
>;

/** The transaction of this browser (`nonce`) for this request: the stored one, or a new one. */
async function transaction(
  svc: OAuthService,
  nonce: string,
  asked: Asked,
): Promise<TransactionRecord> {
  const { clientId, redirectUri, challenge, state, scope, resource } = asked;
  const id = (await svc.hmac.sign(
    JSON.stringify(["txn", nonce, clientId, redirectUri, challenge, state, scope, resource]),
  )).slice(0, 32);
  const now = svc.now();
  const stored = await svc.store.getTransaction(id, now);
  if (stored) return stored;
  const txn = { id, ...asked, createdAt: now, expiresAt: now + TXN_TTL_MS };
  await svc.store.putTransaction(txn);
  return txn;
}

/**
 * `POST /consent`: the Allow or Deny button, accepted only with the transaction's CSRF token in
 * both the form and the cookie.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-10.12
 * @see https://modelcontextprotocol.io/specification/2025-06-18/basic/security_best_practices#confused-deputy-problem
 */
export async function handleConsent(svc: OAuthService, req: Request): Promise<Response> {
  let form: URLSearchParams;
  try {
    form = new URLSearchParams(await readText(req, 16 * 1024, svc.bodyTimeoutMs));
  } catch {
    return errorPage("Invalid request", "The form could not be read.");
  }
  const txn = await svc.store.getTransaction(form.get("txn") ?? "", svc.now());
  if (!txn) {
    return errorPage("This request expired", "Start connecting again from your application.", 400);
  }
  const csrf = await csrfToken(svc, txn);
  const sent = form.get("csrf") ?? "";
  const cookie = readCookie(req, transactionCookie(txn.id));
  if (sent !== csrf || cookie !== csrf) {
    return errorPage(
      "Approval refused",
      "This approval did not come from the page the proxy showed in this browser. Start connecting again from your application.",
      403,
    );
  }
  const action = form.get("action");
  if (action === "deny") {
    svc.log.info("consent denied", { client: txn.clientId });
    return redirectTo(
      appendParams(txn.redirectUri, withState({ error: "access_denied" }, txn.state, svc)),
      303,
    );
  }
  if (action !== "allow") return errorPage("Invalid request", "Choose Allow or Deny.");
  return toGitHub(svc, txn, []);
}

/** Creates the upstream state (only now, on approval) and sends the browser to GitHub. */
async function toGitHub(
  svc: OAuthService,
  txn: TransactionRecord,
  cookies: string[],
): Promise<Response> {
  const upstream = { state: randomToken(""), verifier: oauth.generateRandomCodeVerifier() };
  await svc.store.putTransaction({ ...txn, upstream });
  const location = await svc.github.authorizeUrl({
    redirectUri: svc.callbackUrl,
    state: upstream.state,
    verifier: upstream.verifier,
    scope: svc.githubScope,
  });
  const headers = new Headers({
    location,
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
  });
  for (const c of cookies) headers.append("set-cookie", c);
  return new Response(null, { status: 303, headers });
}

/**
 * The double-submit token: the same for every render of one transaction.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-10.12
 */
export function csrfToken(svc: OAuthService, txn: TransactionRecord): Promise<string> {
  return svc.hmac.sign(`csrf|${txn.id}|${txn.clientId}`);
}

/** Whether the browser already approved exactly this client and redirect URI. */
async function hasApproval(
  svc: OAuthService,
  req: Request,
  client: ResolvedClient,
  redirectUri: string,
): Promise<boolean> {
  const { name, value } = await approval(svc, client, redirectUri);
  return readCookie(req, name) === value;
}

/**
 * The approval cookie for (client, redirect URI), bound to the client's current redirect URIs:
 * consent is asked again when they change.
 * @see https://modelcontextprotocol.io/specification/2025-06-18/basic/security_best_practices#confused-deputy-problem
 */
export async function approval(svc: OAuthService, client: ResolvedClient, redirectUri: string) {
  const key = (await svc.hmac.sign(`approval-name|${client.clientId}|${redirectUri}`)).slice(0, 16);
  const value = await svc.hmac.sign(
    `approved|${client.clientId}|${redirectUri}|${client.fingerprint}`,
  );
  return {
    name: approvalCookie(key),
    value,
    header: setCookie(approvalCookie(key), value, APPROVAL_TTL_S),
  };
}

/**
 * Adds `state` (when the client sent one) and `iss` to an authorization response.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2
 */
export function withState(
  params: Record<string, string>,
  state: string | null,
  svc: OAuthService,
): Record<string, string> {
  const out = { ...params };
  if (state !== null) out.state = state;
  out.iss = svc.auth.publicUrl;
  return out;
}

/**
 * A redirect of the browser back to the client, never cached and without a Referer.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.2.4
 */
export function redirectTo(location: string, status = 302): Response {
  return new Response(null, {
    status,
    headers: { location, "cache-control": "no-store", "referrer-policy": "no-referrer" },
  });
}
