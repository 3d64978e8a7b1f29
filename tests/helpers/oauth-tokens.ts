/**
 * Raw OAuth traffic for the token-endpoint and bearer tests: registration, a code obtained by
 * driving `/authorize` with the HeadlessBrowser (PKCE S256 with a verifier we generate), exact
 * `/token` and `/revoke` requests, MCP probes with a Bearer token, a recorder of every response
 * the test process received, and direct access to the proxy's store while it is stopped.
 */
import assert from "node:assert/strict";
import * as oauth from "oauth4webapi";
import { HeadlessBrowser } from "./oauth.ts";

export const REDIRECT_URI = "http://127.0.0.1:9/callback";

/**
 * Rate limits wide enough for these tests, which send hundreds of OAuth requests (and many
 * deliberately bad tokens) from one IP within seconds. Spread into a proxy config's `limits`.
 */
export const TEST_RATES = {
  registerRate: "1000/min",
  tokenRate: "10000/min",
  authorizeRate: "10000/min",
  failedAuthRate: "10000/min",
};
export const MCP_ACCEPT = "application/json, text/event-stream";
export const PROTOCOL = "2025-06-18";

export type AuthMethod = "none" | "client_secret_post" | "client_secret_basic";

/** A registered client as the test knows it. */
export interface TestClient {
  id: string;
  secret?: string;
  method: AuthMethod;
  redirectUri: string;
}

/** A code delivered to the client's redirect URI, with the verifier that redeems it. */
export interface CodeGrant {
  code: string;
  verifier: string;
  redirectUri: string;
  /** The final redirect URL (code, state, iss). */
  redirect: URL;
}

/** A parsed JSON answer. */
export interface Answer {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
  text: string;
}

/** How the client authenticates on one request (defaults to its registered method). */
export type Send = AuthMethod | { basic: [string, string] } | "omit";

export interface TokenPair {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  scope: string;
}

/** Every secret a test handled, for the leak check. */
export class Secrets {
  readonly verifiers = new Set<string>();
  readonly codes = new Set<string>();
  readonly accessTokens = new Set<string>();
  readonly refreshTokens = new Set<string>();
  readonly clientSecrets = new Set<string>();
}

/** Talks OAuth to one proxy origin, exactly as the test asks. */
export class TokenClient {
  readonly secrets = new Secrets();

  constructor(readonly origin: string, readonly browser = new HeadlessBrowser()) {}

  /** `POST /register` (DCR); asserts 201. */
  async register(
    method: AuthMethod = "none",
    redirectUri = REDIRECT_URI,
    name = `tokens test (${method})`,
  ): Promise<TestClient> {
    const res = await fetch(`${this.origin}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: name,
        redirect_uris: [redirectUri],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: method,
      }),
    });
    const body = await res.json();
    assert.equal(res.status, 201, JSON.stringify(body));
    if (body.client_secret) this.secrets.clientSecrets.add(body.client_secret);
    assert.equal(body.token_endpoint_auth_method, method);
    return { id: body.client_id, secret: body.client_secret, method, redirectUri };
  }

  /**
   * Drives `/authorize` → consent (Allow) → fake GitHub → `/auth/callback` with the browser and
   * returns the code sent to the redirect URI.
   */
  async code(
    client: TestClient,
    options: { resource?: string; scope?: string; browser?: HeadlessBrowser } = {},
  ): Promise<CodeGrant> {
    const verifier = oauth.generateRandomCodeVerifier();
    this.secrets.verifiers.add(verifier);
    const url = new URL(`${this.origin}/authorize`);
    const state = oauth.generateRandomState();
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: client.id,
      redirect_uri: client.redirectUri,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      ...(options.scope === undefined ? {} : { scope: options.scope }),
      ...(options.resource === undefined ? {} : { resource: options.resource }),
    }).toString();
    const browser = options.browser ?? this.browser;
    const result = await browser.browse(url.href, client.redirectUri);
    const redirect = new URL(result.finalUrl);
    const code = redirect.searchParams.get("code");
    if (!code) {
      throw new Error(
        `no code at ${result.finalUrl} (${result.page?.status} ${result.page?.html.slice(0, 400)})`,
      );
    }
    assert.equal(redirect.searchParams.get("state"), state);
    assert.equal(redirect.searchParams.get("iss"), this.origin);
    assert.match(code, /^mop_code_[A-Za-z0-9_-]{43}$/);
    this.secrets.codes.add(code);
    return { code, verifier, redirectUri: client.redirectUri, redirect };
  }

  /** `POST /token` with exactly `params` plus the client's authentication. */
  token(
    client: TestClient,
    params: Record<string, string | undefined>,
    send?: Send,
  ): Promise<Answer> {
    return this.#post("/token", client, params, send);
  }

  /** `POST /revoke`. */
  revoke(
    client: TestClient,
    token: string,
    hint?: string,
    send?: Send,
  ): Promise<Answer> {
    return this.#post("/revoke", client, { token, token_type_hint: hint }, send);
  }

  /** Redeems a code with its verifier and redirect URI; `extra` overrides or adds parameters. */
  exchange(
    client: TestClient,
    grant: CodeGrant,
    extra: Record<string, string | undefined> = {},
    send?: Send,
  ): Promise<Answer> {
    return this.token(client, {
      grant_type: "authorization_code",
      code: grant.code,
      code_verifier: grant.verifier,
      redirect_uri: grant.redirectUri,
      ...extra,
    }, send);
  }

  refresh(
    client: TestClient,
    refreshToken: string,
    extra: Record<string, string | undefined> = {},
    send?: Send,
  ): Promise<Answer> {
    return this.token(client, {
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      ...extra,
    }, send);
  }

  /** A code obtained and redeemed; asserts 200 and returns the pair. */
  async login(
    client: TestClient,
    options: { resource?: string; scope?: string; browser?: HeadlessBrowser } = {},
  ): Promise<TokenPair> {
    const grant = await this.code(client, options);
    const answer = await this.exchange(client, grant);
    return expectTokens(answer);
  }

  /** Records the tokens of a successful answer as secrets. */
  remember(answer: Answer): void {
    if (answer.status !== 200 || !answer.body) return;
    if (typeof answer.body.access_token === "string") {
      this.secrets.accessTokens.add(answer.body.access_token);
    }
    if (typeof answer.body.refresh_token === "string") {
      this.secrets.refreshTokens.add(answer.body.refresh_token);
    }
  }

  async #post(
    path: string,
    client: TestClient,
    params: Record<string, string | undefined>,
    send: Send = client.method,
  ): Promise<Answer> {
    const form = new URLSearchParams();
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
    };
    if (typeof send === "object") {
      headers.authorization = basic(...send.basic);
    } else if (send === "client_secret_basic") {
      headers.authorization = basic(client.id, client.secret ?? "");
    } else if (send === "client_secret_post") {
      form.set("client_id", client.id);
      form.set("client_secret", client.secret ?? "");
    } else if (send === "none") {
      form.set("client_id", client.id);
    }
    for (const [k, v] of Object.entries(params)) if (v !== undefined) form.set(k, v);
    const res = await fetch(`${this.origin}${path}`, {
      method: "POST",
      headers,
      body: form.toString(),
    });
    const answer = await readAnswer(res);
    this.remember(answer);
    return answer;
  }
}

/** `Authorization: Basic` with both parts form-urlencoded (RFC 6749 §2.3.1). */
export function basic(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
  return `Basic ${btoa(`${enc(id)}:${enc(secret)}`)}`;
}

export async function readAnswer(res: Response): Promise<Answer> {
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch { /* not JSON: body stays undefined and assertions on it fail */ }
  return { status: res.status, headers: res.headers, body, text };
}

/** Asserts a successful token response (RFC 6749 §5.1). */
export function expectTokens(answer: Answer): TokenPair {
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(answer.headers.get("cache-control"), "no-store");
  const body = answer.body as TokenPair;
  assert.deepEqual(Object.keys(body).sort(), [
    "access_token",
    "expires_in",
    "refresh_token",
    "scope",
    "token_type",
  ]);
  assert.equal(body.token_type, "Bearer");
  assert.match(body.access_token, /^mop_at_[A-Za-z0-9_-]{43}$/);
  assert.match(body.refresh_token, /^mop_rt_[A-Za-z0-9_-]{43}$/);
  assert.ok(Number.isInteger(body.expires_in) && body.expires_in > 0, String(body.expires_in));
  assert.equal(typeof body.scope, "string");
  return body;
}

/** Asserts an OAuth error response: JSON `{error, error_description}`, no-store, the status. */
export function expectError(answer: Answer, error: string, status = 400): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(answer.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(answer.headers.get("cache-control"), "no-store");
  assert.equal(answer.body?.error, error, answer.text);
  assert.equal(typeof answer.body?.error_description, "string", answer.text);
  assert.deepEqual(Object.keys(answer.body).sort(), ["error", "error_description"]);
}

/** A JSON-RPC initialize, the first request of a 2025 session. */
export function initializeBody(name = "tokens-test"): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: {
      protocolVersion: PROTOCOL,
      capabilities: {},
      clientInfo: { name, version: "1.0.0" },
    },
  });
}

/**
 * POSTs an MCP `initialize` to `url` with the given Authorization header value (none when
 * undefined). Returns the answer; 200 means the token was accepted.
 */
export async function probe(
  url: string,
  authorization?: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const method = init.method ?? "POST";
  const headers: Record<string, string> = {
    accept: MCP_ACCEPT,
    ...(method === "POST" ? { "content-type": "application/json" } : {}),
    ...init.headers,
  };
  if (authorization !== undefined) headers.authorization = authorization;
  const res = await fetch(url, {
    method,
    headers,
    body: method === "POST" ? (init.body ?? initializeBody()) : undefined,
  });
  return await readAnswer(res);
}

/** POSTs an initialize with `Bearer token` and asserts it was accepted (200 and a session). */
/** An MCP request in an existing session, presented with `token`. */
export function inSession(
  url: string,
  token: string,
  sessionId: string,
  method = "POST",
  body: unknown = { jsonrpc: "2.0", id: 1, method: "tools/list" },
): Promise<Response> {
  return fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      accept: MCP_ACCEPT,
      "content-type": "application/json",
      "mcp-session-id": sessionId,
      "mcp-protocol-version": PROTOCOL,
    },
    body: method === "POST" ? JSON.stringify(body) : undefined,
  });
}

export async function expectAccepted(url: string, token: string): Promise<string> {
  const answer = await probe(url, `Bearer ${token}`);
  assert.equal(answer.status, 200, `${url}: ${answer.status} ${answer.text}`);
  const session = answer.headers.get("mcp-session-id");
  assert.ok(session, "a session id was minted");
  return session;
}

/** The parsed parameters of a `WWW-Authenticate: Bearer …` challenge. */
export function bearerChallenge(header: string | null): Record<string, string> {
  assert.ok(header, "WWW-Authenticate is present");
  assert.match(header, /^Bearer /);
  const out: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/([a-z_]+)="([^"]*)"/g)) out[m[1]] = m[2];
  return out;
}

/**
 * Asserts the refusal of an MCP request: 401, a Bearer challenge naming the protected-resource
 * metadata of the endpoint called (`/mcp/<server>` or the legacy `/sse/<server>`) and the `mcp`
 * scope, and `error` exactly as given (absent when undefined, RFC 6750 §3.1).
 */
export function expectRefused(
  answer: Answer,
  origin: string,
  server: string,
  error?: "invalid_token",
  endpoint: "mcp" | "sse" = "mcp",
): void {
  assert.equal(answer.status, 401, answer.text);
  const params = bearerChallenge(answer.headers.get("www-authenticate"));
  assert.equal(
    params.resource_metadata,
    `${origin}/.well-known/oauth-protected-resource/${endpoint}/${server}`,
  );
  assert.equal(params.scope, "mcp");
  assert.equal(params.error, error, `error parameter in ${answer.headers.get("www-authenticate")}`);
  assert.equal(answer.body?.error === "invalid_token", error === "invalid_token", answer.text);
}

/** Asserts a token is refused with `invalid_token` at `server`. */
export async function expectTokenRefused(
  origin: string,
  server: string,
  token: string,
): Promise<void> {
  expectRefused(
    await probe(`${origin}/mcp/${server}`, `Bearer ${token}`),
    origin,
    server,
    "invalid_token",
  );
}

/** One response the test process received. */
export interface Recorded {
  url: string;
  method: string;
  status: number;
  headers: [string, string][];
  body: string;
}

/**
 * Replaces `globalThis.fetch` so every response (the browser's, the SDK's and ours) is recorded:
 * status, headers and the body as it is read (streamed bodies pass through, so SSE streams and
 * their cancellation behave as before). `restore()` puts the real fetch back.
 */
export function recordTraffic(): { entries: Recorded[]; restore(): void } {
  const real = globalThis.fetch;
  const entries: Recorded[] = [];
  const wrapped: typeof fetch = async (input, init) => {
    const req = new Request(input, init);
    const res = await real(req);
    const entry: Recorded = {
      url: req.url,
      method: req.method,
      status: res.status,
      headers: [...res.headers],
      body: "",
    };
    entries.push(entry);
    if (!res.body) return res;
    const decoder = new TextDecoder();
    const body = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          entry.body += decoder.decode(chunk, { stream: true });
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(body, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  };
  globalThis.fetch = wrapped;
  return { entries, restore: () => void (globalThis.fetch = real) };
}

/** SHA-256, base64url: how the store keys tokens and codes. */
export async function storeHash(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return btoa(String.fromCharCode(...new Uint8Array(digest)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Opens the stopped proxy's store (`<dir>/data/store.kv`) to simulate time passing while it was
 * down; the proxy must not be running.
 */
export async function withStore<T>(dir: string, fn: (kv: Deno.Kv) => Promise<T>): Promise<T> {
  const kv = await Deno.openKv(`${dir}/data/store.kv`);
  try {
    return await fn(kv);
  } finally {
    kv.close();
  }
}

/** Rewrites one record of the stopped proxy's store. */
export async function editRecord<T>(
  kv: Deno.Kv,
  key: Deno.KvKey,
  edit: (value: T) => T,
): Promise<void> {
  const entry = await kv.get<T>(key);
  assert.ok(entry.value, `store record ${JSON.stringify(key)} exists`);
  await kv.set(key, edit(entry.value));
}
