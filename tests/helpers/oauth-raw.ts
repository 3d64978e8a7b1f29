/**
 * Raw HTTP helpers for the authorization server's own endpoints, for tests that must see every
 * status, header and redirect (the SDK client and `HeadlessBrowser` hide them): registration,
 * PKCE pairs, `/authorize` URLs, the consent form, a cookie-keeping browser that never follows a
 * redirect on its own, and the code exchange.
 */
import assert from "node:assert/strict";
import { CookieJar } from "./oauth.ts";

/**
 * `limits` for a proxy under test that sends far more registration, authorization and token
 * requests from 127.0.0.1 than any client would: the per-IP rate limits are not what these
 * tests are about (the default burst is checked separately).
 */
export const RELAXED_LIMITS = {
  registerRate: "100000/min",
  tokenRate: "100000/min",
  authorizeRate: "100000/min",
  failedAuthRate: "100000/min",
};

/** A JSON response, read. */
export interface JsonAnswer {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
  text: string;
}

/** Reads a response as JSON, asserting it is `application/json` (never HTML, never a redirect). */
export async function readJson(res: Response): Promise<JsonAnswer> {
  const text = await res.text();
  assert.ok(res.status < 300 || res.status >= 400, `unexpected redirect ${res.status}`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json(;|$)/, text);
  return { status: res.status, headers: res.headers, body: JSON.parse(text), text };
}

/** `POST /register` with a JSON body (a string is sent as is). */
export async function register(
  origin: string,
  metadata: Record<string, unknown> | string,
  headers: Record<string, string> = { "content-type": "application/json" },
): Promise<JsonAnswer> {
  const res = await fetch(`${origin}/register`, {
    method: "POST",
    headers,
    body: typeof metadata === "string" ? metadata : JSON.stringify(metadata),
    redirect: "manual",
  });
  return await readJson(res);
}

/** Registers a public client and returns its `client_id` (asserting a 201). */
export async function registerPublic(
  origin: string,
  redirectUris: string[],
  clientName = "Raw test client",
): Promise<string> {
  const r = await register(origin, {
    client_name: clientName,
    redirect_uris: redirectUris,
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
  });
  assert.equal(r.status, 201, r.text);
  return r.body.client_id;
}

/** A PKCE pair (RFC 7636, S256). */
export async function pkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: b64url(new Uint8Array(digest)) };
}

function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

/**
 * An `/authorize` URL. Parameters set to `undefined` are left out; the defaults are a valid
 * request (response_type=code, S256) apart from client_id, redirect_uri and code_challenge.
 */
export function authorizeUrl(
  origin: string,
  params: Record<string, string | string[] | undefined>,
): string {
  const all: Record<string, string | string[] | undefined> = {
    response_type: "code",
    code_challenge_method: "S256",
    ...params,
  };
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(all)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, one);
  }
  return `${origin}/authorize?${q}`;
}

/** The hidden fields and target of the consent form, or null when the page has none. */
export interface ConsentForm {
  action: string;
  txn: string;
  csrf: string;
}

export function consentForm(html: string): ConsentForm | null {
  const form = /<form method="post" action="([^"]+)">([\s\S]*?)<\/form>/.exec(html);
  if (!form) return null;
  const field = (name: string) =>
    unescapeHtml(
      new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(form[2])?.[1] ?? "",
    );
  return { action: unescapeHtml(form[1]), txn: field("txn"), csrf: field("csrf") };
}

export function unescapeHtml(text: string): string {
  return text.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(
    /&amp;/g,
    "&",
  );
}

/** One answer seen by {@link RawBrowser}, body read. */
export interface Seen {
  url: string;
  status: number;
  headers: Headers;
  /** `Location`, resolved against the request URL, for redirects. */
  location: string | null;
  setCookies: string[];
  body: string;
}

/**
 * A browser that keeps cookies (per origin, like `__Host-` cookies) but never follows a redirect
 * by itself, so each hop can be asserted.
 */
export class RawBrowser {
  readonly jar = new CookieJar();
  /** Every answer, in order. */
  readonly seen: Seen[] = [];

  get(url: string): Promise<Seen> {
    return this.#send(url, { method: "GET" });
  }

  /** POSTs a form (`application/x-www-form-urlencoded`). */
  post(url: string, fields: Record<string, string>, cookie?: string | null): Promise<Seen> {
    return this.#send(url, {
      method: "POST",
      body: new URLSearchParams(fields).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    }, cookie);
  }

  /** Submits the consent form of `page` with `action` (allow or deny). */
  submit(page: Seen, action: "allow" | "deny"): Promise<Seen> {
    const form = consentForm(page.body);
    assert.ok(form, `no consent form at ${page.url} (${page.status}): ${page.body.slice(0, 400)}`);
    return this.post(form.action, { txn: form.txn, csrf: form.csrf, action });
  }

  /** The Cookie header this browser would send to `url`. */
  cookie(url: string): string | undefined {
    return this.jar.header(url);
  }

  /**
   * Sends the request; `cookie` overrides the jar (null sends no cookie at all). Cookies set by
   * the answer are stored either way.
   */
  async #send(url: string, init: RequestInit, cookie?: string | null): Promise<Seen> {
    const headers = new Headers(init.headers);
    const sent = cookie === undefined ? this.jar.header(url) : cookie;
    if (sent) headers.set("cookie", sent);
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    this.jar.store(url, res);
    const location = res.headers.get("location");
    const seen: Seen = {
      url,
      status: res.status,
      headers: res.headers,
      location: location === null ? null : new URL(location, url).href,
      setCookies: res.headers.getSetCookie(),
      body: await res.text(),
    };
    this.seen.push(seen);
    return seen;
  }
}

/** The error page contract: HTML, not a redirect, no code, the page security headers. */
export function assertErrorPage(seen: Seen, status = 400): void {
  assert.equal(seen.status, status, `${seen.url}: ${seen.body.slice(0, 300)}`);
  assert.equal(seen.location, null, `${seen.url} must not redirect`);
  assert.equal(seen.headers.get("location"), null);
  assert.match(seen.headers.get("content-type") ?? "", /^text\/html/);
  assertPageHeaders(seen.headers);
  assert.doesNotMatch(seen.body, /<form/, "an error page carries no consent form");
  assert.doesNotMatch(seen.body, /mop_code_/);
}

/** The headers every consent and error page sends (clickjacking: RFC 9700 §4.16). */
export function assertPageHeaders(headers: Headers): void {
  assert.match(headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
  assert.equal(headers.get("x-frame-options"), "DENY");
  assert.equal(headers.get("cache-control"), "no-store");
  assert.equal(headers.get("referrer-policy"), "no-referrer");
  assert.equal(headers.get("x-content-type-options"), "nosniff");
}

/** The query of an error (or success) redirect to the client, after asserting where it goes. */
export function redirectParams(seen: Seen, redirectUri: string): URLSearchParams {
  assert.ok(
    seen.status === 302 || seen.status === 303,
    `expected a redirect from ${seen.url}, got ${seen.status}: ${seen.body.slice(0, 300)}`,
  );
  const location = seen.headers.get("location")!;
  const sep = redirectUri.includes("?") ? "&" : "?";
  assert.ok(
    location.startsWith(redirectUri + sep),
    `redirect to ${location}, expected ${redirectUri}${sep}…`,
  );
  return new URL(location).searchParams;
}

/** `POST /token` with a form; returns the JSON answer. */
export async function tokenRequest(
  origin: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<JsonAnswer> {
  const res = await fetch(`${origin}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
    redirect: "manual",
  });
  return await readJson(res);
}
