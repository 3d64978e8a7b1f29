/**
 * The browser cookies of the authorization flow: `__Host-` names (Secure, Path=/, no Domain),
 * HttpOnly, SameSite=Lax (the GitHub callback is a cross-site top-level navigation), and values
 * that are HMACs bound to the transaction and the client.
 */

/**
 * Cookie name of one authorization transaction (a name per transaction: tabs don't collide).
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-rfc6265bis#section-4.1.3.2
 */
export function transactionCookie(txnId: string): string {
  return `__Host-mop-tx-${txnId}`;
}

/**
 * Cookie name of the browser binding: a random value, set on the first valid `/authorize`, that
 * makes transaction ids (and so the CSRF tokens derived from them) differ from one browser to
 * the next while staying stable across reloads in one browser.
 */
export const BROWSER_COOKIE = "__Host-mop-b";

/**
 * Cookie name of the approval for one (client, redirect URI).
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-rfc6265bis#section-4.1.3.2
 */
export function approvalCookie(key: string): string {
  return `__Host-mop-ok-${key}`;
}

/**
 * A Set-Cookie header value: Secure, HttpOnly, SameSite=Lax, Path=/ and no Domain.
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-rfc6265bis#section-4.1
 */
export function setCookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Max-Age=${maxAgeSeconds}; Path=/; Secure; HttpOnly; SameSite=Lax`;
}

/**
 * Reads one cookie from a request.
 * @see https://www.rfc-editor.org/rfc/rfc6265#section-5.4
 */
export function readCookie(req: Request, name: string): string | null {
  const header = req.headers.get("cookie");
  if (!header) return null;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}
