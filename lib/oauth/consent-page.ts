/**
 * The consent page: who is asking (the name as the client claims it), where the browser will
 * be sent, which servers and scopes, and what GitHub will be asked for. Approve is **Allow**,
 * refuse is **Deny**; the form carries the transaction's CSRF token.
 */
import type { TransactionRecord } from "../store/kv.ts";
import { escapeHtml, page } from "./html.ts";
import { isCustomScheme, isLoopback } from "./redirect.ts";
import type { OAuthService, ResolvedClient } from "./service.ts";

/** Renders the consent page for a transaction. */
export function consentPage(
  svc: OAuthService,
  view: { client: ResolvedClient; txn: TransactionRecord; csrf: string; redirectUri: string },
  headers: Record<string, string>,
): Response {
  const { client, txn, csrf, redirectUri } = view;
  const target = describeRedirect(redirectUri);
  const servers = txn.resource === svc.auth.publicUrl
    ? svc.servers.map((s) => s.name)
    : [txn.resource.slice(txn.resource.lastIndexOf("/") + 1)];
  const allLoopback = client.redirectUris.every((u) => isLoopback(u));
  const custom = isCustomScheme(redirectUri);
  const githubScope = svc.policy.githubScope;
  const parts = [
    `<p><strong>${
      escapeHtml(client.name)
    }</strong> <span class="note">(the name this application gives itself; the proxy cannot verify it)</span> asks to use your MCP servers through this proxy.</p>`,
    `<p>After you sign in, you will be sent back to <code>${escapeHtml(target)}</code>.</p>`,
  ];
  if (client.cimdHost) {
    parts.push(
      `<p class="note">Its description was published by <code>${
        escapeHtml(client.cimdHost)
      }</code>.</p>`,
    );
  }
  if (custom) {
    parts.push(
      `<p class="warn">This sends you back to an application on your computer through the <code>${
        escapeHtml(new URL(redirectUri).protocol)
      }</code> link scheme. Allow only if you just started connecting from that application.</p>`,
    );
  } else if (allLoopback) {
    parts.push(
      `<p class="warn">This application runs on a computer's own address (localhost). Allow only if you just started it yourself on this computer.</p>`,
    );
  }
  parts.push(
    `<p>Servers: ${servers.map((s) => `<code>${escapeHtml(s)}</code>`).join(", ")}<br>` +
      `Access: ${txn.scope.split(" ").map((s) => `<code>${escapeHtml(s)}</code>`).join(" ")}</p>`,
    `<p class="note">Next you sign in with GitHub. The proxy asks GitHub for ${
      githubScope
        ? `<code>${escapeHtml(githubScope)}</code> (to check your organization or team membership)`
        : "no access beyond your public profile (your user id)"
    }. Only allow-listed accounts get in.</p>`,
    `<form method="post" action="${escapeHtml(svc.auth.publicUrl)}/consent">` +
      `<input type="hidden" name="txn" value="${escapeHtml(txn.id)}">` +
      `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">` +
      `<button type="submit" name="action" value="allow">Allow</button>` +
      `<button type="submit" name="action" value="deny">Deny</button></form>`,
  );
  return page("Allow access to your MCP servers?", parts.join("\n"), 200, headers);
}

/** The scheme, host and port the browser will be sent to (all of it, per the MCP spec). */
function describeRedirect(uri: string): string {
  const url = new URL(uri);
  if (url.protocol === "http:" || url.protocol === "https:") {
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    return `${url.protocol}//${url.hostname}:${port}`;
  }
  return `${url.protocol}//${url.host}`;
}
