/**
 * The consent page: which proxy, who is asking (the name as the client claims it), which servers
 * and what the client may do there, where the browser will be sent, and what GitHub will be asked
 * for. Approve is **Allow** (the primary button), refuse is **Deny**; the form carries the
 * transaction's CSRF token.
 */
import type { TransactionRecord } from "../store/store.ts";
import { type Html, join, markup } from "../html.ts";
import { page } from "./html.ts";
import { isCustomScheme, isLoopback } from "../net/redirect-uri.ts";
import type { OAuthService, ResolvedClient } from "./service.ts";
import { isCimdClientId } from "./cimd.ts";

/** What each scope lets the client do, in the words of the consent page. */
const SCOPE_WORDS: Record<string, string> = {
  mcp: "use the MCP servers listed above",
  offline_access: "stay connected without asking you again",
};

/**
 * Renders the consent page for a transaction. It names this proxy's host, speaks to whoever signs
 * in (the owner or someone the owner invited), and makes Allow the primary button.
 * @see https://modelcontextprotocol.io/specification/2025-06-18/basic/security_best_practices#confused-deputy-problem
 */
export function consentPage(
  svc: OAuthService,
  view: { client: ResolvedClient; txn: TransactionRecord; csrf: string; redirectUri: string },
  headers: Record<string, string>,
): Response {
  const { client, txn, csrf, redirectUri } = view;
  const host = new URL(svc.auth.publicUrl).host;
  const may = txn.scope.split(" ").map((s) => SCOPE_WORDS[s] ?? s).join(", and ");
  const githubAsk = svc.githubScope
    ? markup`<code>${svc.githubScope}</code> (to check your organization or team membership)`
    : "no access beyond your public profile (your user id)";
  const parts = [
    markup`<p><strong>${client.name}</strong> <span class="note">(the name this application gives itself; the proxy cannot verify it)</span> asks to use MCP servers at <code>${host}</code> on your behalf.</p>`,
    markup`<p>Servers: ${serverList(svc, txn)}<br>It will be able to ${may}.</p>`,
    markup`<p>After you sign in, you will be sent back to <code>${
      describeRedirect(redirectUri)
    }</code>.</p>`,
    ...warnings(client, redirectUri),
    markup`<p class="note">Next you sign in with GitHub. The proxy asks GitHub for ${githubAsk}. Only GitHub accounts the owner of this proxy has allowed get in. If you did not just start connecting an application, choose Deny.</p>`,
    consentForm(svc, txn, csrf),
  ];
  return page(`Allow access to the MCP servers at ${host}?`, join(parts, "\n"), 200, headers);
}

/**
 * The servers the request covers that whoever signs in may use. The page comes before sign-in
 * (consent must precede the redirect to GitHub), so servers with an `allow` of their own are
 * never named for a request covering the whole origin (or the merged `/mcp` endpoint, which
 * serves every server the person may use): the sentence says only that some may be
 * open to particular accounts. A request for one server names that server (the client asked for
 * it by its URL), saying when it is open to particular accounts only: sign-in refuses it to
 * anyone its `allow` does not admit.
 */
function serverList(svc: OAuthService, txn: TransactionRecord): Html {
  const one = svc.serverOf(txn.resource);
  const names = one !== null
    ? [one]
    : svc.servers.map((s) => s.name).filter((name) => !svc.access.restricted(name));
  const listed = join(names.map((s) => markup`<code>${s}</code>`), ", ");
  if (one !== null && svc.access.restricted(one)) {
    return markup`${listed} (only if the owner opened it to your account)`;
  }
  if (one !== null || svc.access.restrictedServers.length === 0) return listed;
  const others = "the servers the owner opened to particular accounts, if yours is one of them";
  return names.length === 0 ? markup`${others}` : markup`${listed}, and ${others}`;
}

/** Where the client's description came from, and warnings for redirects to this computer. */
function warnings(client: ResolvedClient, redirectUri: string): Html[] {
  const out: Html[] = [];
  if (client.cimdHost) {
    out.push(
      markup`<p class="note">Its description was published by <code>${client.cimdHost}</code>.</p>`,
    );
  }
  if (isCustomScheme(redirectUri)) {
    const scheme = new URL(redirectUri).protocol;
    out.push(
      markup`<p class="warn">This sends you back to an application on your computer through the <code>${scheme}</code> link scheme. Allow only if you just started connecting from that application.</p>`,
    );
  } else if (client.redirectUris.every((u) => isLoopback(u))) {
    out.push(
      markup`<p class="warn">This application runs on a computer's own address (localhost). Allow only if you just started it yourself on this computer.</p>`,
    );
  }
  return out;
}

/** The Allow and Deny buttons, carrying the transaction and its CSRF token. */
function consentForm(svc: OAuthService, txn: TransactionRecord, csrf: string): Html {
  const hidden = (name: string, value: string) =>
    markup`<input type="hidden" name="${name}" value="${value}">`;
  return markup`<form method="post" action="${svc.auth.publicUrl}/consent">${
    hidden("txn", txn.id)
  }${hidden("csrf", csrf)}${ALLOW_DENY}</form>`;
}

const ALLOW_DENY =
  markup`<button type="submit" name="action" value="allow" class="primary">Allow</button><button type="submit" name="action" value="deny">Deny</button>`;

/**
 * The origin the browser will be sent to: scheme, host and any port that is not the scheme's
 * default (`https://chatgpt.com`, `http://127.0.0.1:33418`); for a custom scheme, scheme and host.
 */
function describeRedirect(uri: string): string {
  const url = new URL(uri);
  if (url.protocol === "http:" || url.protocol === "https:") return url.origin;
  return `${url.protocol}//${url.host}`;
}

/**
 * The page for an authorization request from a client the proxy does not know: what happened
 * and what the person can do about it (shown, never redirected: the redirect URI is unverified).
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 */
export function unknownClientPage(svc: OAuthService, clientId: string, reason: string): Response {
  const host = new URL(svc.auth.publicUrl).host;
  const parts = isCimdClientId(clientId)
    ? [
      markup`<p>The description of the application that sent you here could not be used, so the MCP proxy at <code>${host}</code> cannot let it in.</p>`,
      markup`<p>Try connecting again in a minute. If it keeps failing, tell the owner of this proxy what the details below say.</p>`,
      markup`<p class="note">Details: ${reason}</p>`,
    ]
    : [
      markup`<p>The application that sent you here is not registered with the MCP proxy at <code>${host}</code>. This happens when the proxy's owner removed it, or when the proxy's data was reset.</p>`,
      markup`<p><strong>To fix it:</strong> in ChatGPT, Claude or the application you were connecting, remove this connector (or MCP server) and add it again with the same URL. It then registers anew, and you will be asked to allow it.</p>`,
    ];
  return page("Unknown client", join(parts, "\n"), 400);
}
