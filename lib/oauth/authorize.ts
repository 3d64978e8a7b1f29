/**
 * `GET /authorize` and the consent step (`POST /consent`). The client and redirect URI are
 * checked first (errors shown, never redirected: RFC 6749 §4.1.2.1), then
 * everything else (errors redirected with `state` and `iss`). Consent comes before GitHub.
 * @see https://www.ietf.org/archive/id/draft-ietf-oauth-v2-1-13.html#section-4.1.1
 */
import { base64url, randomBytes, randomToken } from "../crypto.ts";
import type { TransactionRecord } from "../store/kv.ts";
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

/** `GET /authorize`. */
export async function handleAuthorize(svc: OAuthService, req: Request): Promise<Response> {
  const q = new URL(req.url).searchParams;
  for (const key of new Set(q.keys())) {
    if (key !== "resource" && q.getAll(key).length > 1) {
      return errorPage("Invalid request", `The parameter "${key}" appears more than once.`);
    }
  }
  const clientId = q.get("client_id");
  if (!clientId) return errorPage("Invalid request", "client_id is missing.");
  let client: ResolvedClient;
  try {
    client = await svc.client(clientId);
  } catch (error) {
    const message = error instanceof OAuthError ? error.description : "unknown client";
    return unknownClientPage(svc, clientId, message);
  }
  const redirectUri = q.get("redirect_uri");
  if (!redirectUri) return errorPage("Invalid request", "redirect_uri is missing.");
  if (!svc.redirectAllowed(client, redirectUri)) {
    return errorPage(
      "Invalid redirect URI",
      "The redirect_uri is not registered for this client, so the proxy will not send you there.",
    );
  }

  // From here on, errors go back to the client.
  const state = q.get("state");
  const fail = (code: string, description: string) =>
    redirectTo(
      appendParams(
        redirectUri,
        withState({ error: code, error_description: description }, state, svc),
      ),
    );
  if (state !== null && state.length > MAX_STATE) {
    return fail("invalid_request", "state is too long");
  }
  if (q.get("response_type") !== "code") {
    return fail("unsupported_response_type", "only response_type=code is supported");
  }
  const challenge = q.get("code_challenge");
  const method = q.get("code_challenge_method");
  if (!challenge) return fail("invalid_request", "code_challenge is required (PKCE)");
  if (method !== "S256") return fail("invalid_request", "code_challenge_method must be S256");
  if (!CHALLENGE.test(challenge)) return fail("invalid_request", "code_challenge is malformed");
  const requested = (q.get("scope") ?? "mcp").split(" ").filter(Boolean);
  const scopes = requested.filter((s) => (SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0) return fail("invalid_scope", "no supported scope requested (use mcp)");
  const resources = q.getAll("resource");
  if (resources.length > 1) return fail("invalid_target", "only one resource may be requested");
  const audience = svc.audience(resources[0] ?? null);
  if (!audience) return fail("invalid_target", "resource is not an MCP endpoint of this proxy");

  const scope = [...new Set(scopes)].join(" ");
  // The transaction id is derived from the request and this browser's random binding cookie, so
  // a reload, a duplicate GET or a prefetch in one browser lands on the same transaction and the
  // same CSRF token, while another browser loading the same URL (an attacker reading the form)
  // gets a transaction and token of its own.
  const sentNonce = readCookie(req, BROWSER_COOKIE);
  const nonce = sentNonce && BROWSER_NONCE.test(sentNonce) ? sentNonce : base64url(randomBytes(16));
  const browserCookie = setCookie(BROWSER_COOKIE, nonce, TXN_TTL_MS / 1000);
  const txnId = (await svc.hmac.sign(
    JSON.stringify(["txn", nonce, clientId, redirectUri, challenge, state, scope, audience]),
  ))
    .slice(0, 32);
  const now = svc.now();
  let txn = await svc.store.getTransaction(txnId, now);
  if (!txn) {
    txn = {
      id: txnId,
      clientId,
      redirectUri,
      challenge,
      scope,
      resource: audience,
      state,
      createdAt: now,
      expiresAt: now + TXN_TTL_MS,
    };
    await svc.store.putTransaction(txn);
  }
  const csrf = await csrfToken(svc, txn);
  const txnCookie = setCookie(transactionCookie(txnId), csrf, TXN_TTL_MS / 1000);
  if (await hasApproval(svc, req, client, redirectUri)) {
    return toGitHub(svc, txn, [browserCookie, txnCookie]);
  }
  const response = consentPage(svc, { client, txn, csrf, redirectUri }, {
    "set-cookie": browserCookie,
  });
  response.headers.append("set-cookie", txnCookie);
  return response;
}

/** `POST /consent`: the Allow or Deny button. */
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
    scope: svc.policy.githubScope,
  });
  const headers = new Headers({
    location,
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
  });
  for (const c of cookies) headers.append("set-cookie", c);
  return new Response(null, { status: 303, headers });
}

/** The double-submit token: the same for every render of one transaction. */
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

/** The approval cookie for (client, redirect URI), bound to the client's current redirect URIs. */
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

/** Adds `state` (when the client sent one) and `iss` to an authorization response. */
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

export function redirectTo(location: string, status = 302): Response {
  return new Response(null, {
    status,
    headers: { location, "cache-control": "no-store", "referrer-policy": "no-referrer" },
  });
}
