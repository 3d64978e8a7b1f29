/**
 * Building blocks for the OAuth end-to-end tests that drive the flow by hand (instead of through
 * the SDK client): PKCE, registration, the /authorize URL, a sign-in through the HeadlessBrowser
 * that reports where it ended (code, error redirect or an HTML page), the /token calls, a raw
 * MCP request with a Bearer token, config rewrites for SIGHUP, and a TLS loopback server for
 * https client ID metadata documents.
 */
import { HeadlessBrowser } from "./oauth.ts";
import type { ProxyProcess } from "./proxy.ts";

/** The redirect URI the hand-driven flows use (nothing listens on port 9). */
export const REDIRECT_URI = "http://127.0.0.1:9/callback";

/** A fresh PKCE pair (S256). */
export async function pkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: b64url(new Uint8Array(digest)) };
}

function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export interface Registration {
  client_id: string;
  client_secret?: string;
  token_endpoint_auth_method: string;
  [key: string]: unknown;
}

/** `POST /register`; throws unless 201. */
export async function register(
  origin: string,
  meta: Record<string, unknown> = {},
): Promise<Registration> {
  const res = await fetch(`${origin}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "flow test client",
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      ...meta,
    }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** The /authorize URL of a code flow with PKCE S256. */
export function authorizeUrl(
  origin: string,
  p: {
    clientId: string;
    challenge: string;
    state?: string;
    redirectUri?: string;
    resource?: string;
  },
): string {
  const q = new URLSearchParams({
    response_type: "code",
    client_id: p.clientId,
    redirect_uri: p.redirectUri ?? REDIRECT_URI,
    code_challenge: p.challenge,
    code_challenge_method: "S256",
    scope: "mcp",
  });
  if (p.state !== undefined) q.set("state", p.state);
  if (p.resource !== undefined) q.set("resource", p.resource);
  return `${origin}/authorize?${q}`;
}

export interface SignIn {
  /** The `code` delivered to the redirect URI, when the flow got that far. */
  code?: string;
  /** The `error` delivered to the redirect URI. */
  error?: string;
  /** The redirect URI hit (with its query), when the flow reached it. */
  redirect?: URL;
  /** The HTML page the flow stopped on (not-allowed page, error page). */
  page?: { url: string; status: number; html: string };
  verifier: string;
  state: string;
  clientId: string;
  browser: HeadlessBrowser;
}

/**
 * One authorization through the HeadlessBrowser (consent answered with Allow unless the
 * browser says otherwise): registers a public client unless `clientId` is given.
 */
export async function signIn(
  proxy: ProxyProcess,
  options: {
    clientId?: string;
    browser?: HeadlessBrowser;
    redirectUri?: string;
    resource?: string;
  } = {},
): Promise<SignIn> {
  const redirectUri = options.redirectUri ?? REDIRECT_URI;
  const clientId = options.clientId ??
    (await register(proxy.origin, { redirect_uris: [redirectUri] })).client_id;
  const browser = options.browser ?? new HeadlessBrowser();
  const { verifier, challenge } = await pkce();
  const state = `st-${crypto.randomUUID()}`;
  const url = authorizeUrl(proxy.origin, {
    clientId,
    challenge,
    state,
    redirectUri,
    resource: options.resource,
  });
  const result = await browser.browse(url, redirectUri);
  const out: SignIn = { verifier, state, clientId, browser };
  if (result.page) {
    out.page = result.page;
    return out;
  }
  const redirect = new URL(result.finalUrl);
  out.redirect = redirect;
  out.code = redirect.searchParams.get("code") ?? undefined;
  out.error = redirect.searchParams.get("error") ?? undefined;
  return out;
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
}

/** Client authentication for /token and /revoke. */
export type ClientAuth =
  | { clientId: string }
  | { clientId: string; secret: string; method: "client_secret_post" | "client_secret_basic" };

async function tokenRequest(
  origin: string,
  auth: ClientAuth,
  params: Record<string, string>,
): Promise<Response> {
  const form = new URLSearchParams(params);
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
  };
  if ("secret" in auth && auth.method === "client_secret_basic") {
    const enc = (s: string) => encodeURIComponent(s);
    headers.authorization = `Basic ${btoa(`${enc(auth.clientId)}:${enc(auth.secret)}`)}`;
  } else {
    form.set("client_id", auth.clientId);
    if ("secret" in auth) form.set("client_secret", auth.secret);
  }
  return await fetch(`${origin}/token`, { method: "POST", headers, body: form });
}

/** Redeems a code; returns the raw response. */
export function redeem(
  origin: string,
  auth: ClientAuth,
  code: string,
  verifier: string,
  redirectUri = REDIRECT_URI,
): Promise<Response> {
  return tokenRequest(origin, auth, {
    grant_type: "authorization_code",
    code,
    code_verifier: verifier,
    redirect_uri: redirectUri,
  });
}

/** Uses a refresh token; returns the raw response. */
export function refresh(origin: string, auth: ClientAuth, refreshToken: string): Promise<Response> {
  return tokenRequest(origin, auth, { grant_type: "refresh_token", refresh_token: refreshToken });
}

/** Signs in and redeems the code; throws when the flow did not deliver a code. */
export async function signInForTokens(
  proxy: ProxyProcess,
  options: Parameters<typeof signIn>[1] = {},
): Promise<SignIn & { tokens: Tokens }> {
  const flow = await signIn(proxy, options);
  if (!flow.code) {
    throw new Error(
      `no code: ${flow.redirect?.href ?? `${flow.page?.status} ${flow.page?.html}`}\n` +
        proxy.logs(),
    );
  }
  const res = await redeem(
    proxy.origin,
    { clientId: flow.clientId },
    flow.code,
    flow.verifier,
    options.redirectUri,
  );
  const body = await res.json();
  if (res.status !== 200) throw new Error(`token: ${res.status} ${JSON.stringify(body)}`);
  return { ...flow, tokens: body };
}

/** A JSON-RPC `initialize` POSTed to an MCP endpoint with a Bearer token; body consumed. */
export async function mcpInitialize(
  url: string,
  accessToken: string,
): Promise<{ status: number; wwwAuthenticate: string | null; body: string }> {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${accessToken}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "raw-test", version: "1.0.0" },
      },
    }),
  });
  return {
    status: res.status,
    wwwAuthenticate: res.headers.get("www-authenticate"),
    body: await res.text(),
  };
}

/** Rewrites the proxy's config file (`edit` gets the parsed JSON) and reloads it (SIGHUP). */
export async function reloadConfig(
  proxy: ProxyProcess,
  edit: (config: Record<string, unknown>) => void,
): Promise<void> {
  const config = JSON.parse(await Deno.readTextFile(proxy.configPath));
  edit(config);
  await Deno.writeTextFile(proxy.configPath, JSON.stringify(config, null, 2));
  proxy.reload();
}

/** How many lines of the proxy's log match `pattern`. */
export function countLogLines(proxy: ProxyProcess, pattern: RegExp): number {
  return proxy.logs().split("\n").filter((l) => pattern.test(l)).length;
}

/** Waits until the proxy logged `pattern` more than `after` times; returns the newest line. */
export async function waitForNewLog(
  proxy: ProxyProcess,
  pattern: RegExp,
  after: number,
  timeoutMs = 10_000,
): Promise<string> {
  await waitUntil(() => countLogLines(proxy, pattern) > after, timeoutMs, `log ${pattern}`);
  return proxy.logs().split("\n").filter((l) => pattern.test(l)).at(-1)!;
}

/** Polls `check` every 20 ms until it holds. */
export async function waitUntil(
  check: () => boolean,
  timeoutMs = 5000,
  what = "a condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A loopback port with nothing listening on it. */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The hrefs of a page's links, HTML entities decoded. */
export function links(html: string): string[] {
  return [...html.matchAll(/<a href="([^"]*)"/g)].map((m) =>
    m[1].replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, "&")
  );
}

/** The visible text of a page (tags dropped, entities decoded, whitespace collapsed). */
export function pageText(html: string): string {
  return html.replace(/<style>[\s\S]*?<\/style>/g, "").replace(/<[^>]+>/g, " ")
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, "&")
    .replace(/\s+/g, " ").trim();
}

/**
 * A self-signed certificate for `127.0.0.1` (EC P-256, valid until 2126), test use only. The
 * proxy under test is started with `--unsafely-ignore-certificate-errors=127.0.0.1` to fetch
 * from {@link serveTls}; the SDK client refuses a `clientMetadataUrl` that is not https.
 */
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBkDCCATagAwIBAgIUPZHKLf92rfoyQR6Rv/sawzYp4PYwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyNzIyMjU0M1oYDzIxMjYxMTAz
MjIyNTQzWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATusTxv91gb3507EnX9IxSX47cXRp536rDqTS67XWTxBo3gGjA0a3kx
qf8SUHw5vnRkzm8rync+QGGtJ8eS5gD5o2QwYjAdBgNVHQ4EFgQUaYeCkzen3hhm
C4pZasoCtGMeBygwHwYDVR0jBBgwFoAUaYeCkzen3hhmC4pZasoCtGMeBygwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC
IQD6+1ujOKrOsUPIYECNWHpHLzac5CPcCe3+8XkOnNJMrAIgJeXEEAHU4PZGhEJp
MgrtHBtbjQ9gmTcJ5Q3XftGpneg=
-----END CERTIFICATE-----
`;
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgtzfNyW6I3mX0Fp/S
VC1CMsq/98/13v+90uxwYsQK2HChRANCAATusTxv91gb3507EnX9IxSX47cXRp53
6rDqTS67XWTxBo3gGjA0a3kxqf8SUHw5vnRkzm8rync+QGGtJ8eS5gD5
-----END PRIVATE KEY-----
`;

export interface TlsServer {
  /** `https://127.0.0.1:PORT` */
  origin: string;
  /** `127.0.0.1:PORT`, as listed in `oauth.clientMetadataHosts`. */
  host: string;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** An https server on 127.0.0.1 port 0 answering `path` with `body` (JSON) and 404 otherwise. */
export function serveTls(
  documents: Record<string, { body: string; headers?: Record<string, string> }>,
): TlsServer {
  const requests: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: TEST_CERT, key: TEST_KEY, onListen: () => {} },
    (req) => {
      const path = new URL(req.url).pathname;
      requests.push(path);
      const doc = documents[path];
      if (!doc) return new Response("not found", { status: 404 });
      return new Response(doc.body, {
        headers: { "content-type": "application/json", ...doc.headers },
      });
    },
  );
  const host = `127.0.0.1:${server.addr.port}`;
  return {
    origin: `https://${host}`,
    host,
    requests,
    close: () => server.shutdown(),
  };
}
