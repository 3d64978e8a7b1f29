/**
 * The official SDK client's OAuth support, driven headlessly: an `OAuthClientProvider` whose
 * "browser" follows redirects with a cookie jar, submits the consent form, and captures the
 * code sent to the client's redirect URI. Plus the fake GitHub and a proxy config using it.
 */
// @ts-types="@modelcontextprotocol/sdk/client/auth"
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
// @ts-types="@modelcontextprotocol/sdk/client/sse"
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
// @ts-types="@modelcontextprotocol/sdk/client/auth"
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
// @ts-types="@modelcontextprotocol/sdk/shared/auth"
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import { type FakeGitHub, startFakeGitHub } from "../fixtures/fake-github.ts";
import { inArrivalOrder } from "./client.ts";

export const GITHUB_CLIENT_ID = "Ov23liTestClient01";
export const GITHUB_CLIENT_SECRET = "gh-app-secret-for-tests-0123456789";
export const ALICE = { id: 583231, login: "alice" };
export const BOB = { id: 1001, login: "bob" };
export const MALLORY = { id: 6666, login: "mallory" };

/** Starts the fake GitHub with the proxy's OAuth App and three users (alice current). */
export async function fakeGitHub(): Promise<FakeGitHub> {
  const gh = await startFakeGitHub({
    apps: [{ clientId: GITHUB_CLIENT_ID, clientSecret: GITHUB_CLIENT_SECRET }],
    users: [ALICE, BOB, MALLORY],
    currentUserId: ALICE.id,
  });
  return gh;
}

/** The login part of a proxy config pointing at the fake GitHub. */
export function loginConfig(
  gh: FakeGitHub,
  allow: Record<string, unknown> = { users: [ALICE.id] },
) {
  return {
    github: {
      clientId: GITHUB_CLIENT_ID,
      clientSecret: "${GITHUB_CLIENT_SECRET}",
      webUrl: gh.webUrl,
      apiUrl: gh.apiUrl,
    },
    allow,
  };
}

/** The environment the proxy needs for `loginConfig`. */
export const LOGIN_ENV = {
  GITHUB_CLIENT_SECRET,
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  HOME: Deno.env.get("HOME") ?? "/tmp",
};

/** A cookie jar keyed by origin (enough for the proxy's `__Host-` cookies). */
export class CookieJar {
  readonly #cookies = new Map<string, Map<string, string>>();

  store(url: string, response: Response): void {
    const origin = new URL(url).origin;
    const jar = this.#cookies.get(origin) ?? new Map();
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(";");
      const i = pair.indexOf("=");
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const maxAge = attrs.find((a) => /^\s*max-age=/i.test(a));
      if (maxAge && Number(maxAge.split("=")[1]) <= 0) jar.delete(name);
      else jar.set(name, value);
    }
    this.#cookies.set(origin, jar);
  }

  header(url: string): string | undefined {
    const jar = this.#cookies.get(new URL(url).origin);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  names(url: string): string[] {
    return [...(this.#cookies.get(new URL(url).origin)?.keys() ?? [])];
  }

  clear(): void {
    this.#cookies.clear();
  }
}

export interface BrowseResult {
  /** The URL the flow ended at (the client's redirect URI with code or error). */
  finalUrl: string;
  /** Every URL visited, in order. */
  visited: string[];
  /** The last HTML page seen, if the flow stopped on one. */
  page?: { url: string; status: number; html: string };
}

/**
 * A headless browser for the authorization flow: follows redirects, keeps cookies, answers the
 * consent page with Allow (or Deny), and stops at `stopAt` (the client's redirect URI).
 */
export class HeadlessBrowser {
  readonly jar = new CookieJar();
  consent: "allow" | "deny" = "allow";
  /** Pages seen (consent included), for assertions. */
  readonly pages: { url: string; status: number; html: string; headers: Headers }[] = [];

  async browse(start: string, stopAt: string): Promise<BrowseResult> {
    const visited: string[] = [];
    let url = start;
    let init: RequestInit = {};
    for (let hop = 0; hop < 20; hop++) {
      visited.push(url);
      if (url.startsWith(stopAt)) return { finalUrl: url, visited };
      const headers = new Headers(init.headers);
      const cookie = this.jar.header(url);
      if (cookie) headers.set("cookie", cookie);
      const res = await fetch(url, { ...init, headers, redirect: "manual" });
      this.jar.store(url, res);
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel();
        url = new URL(res.headers.get("location")!, url).href;
        init = {};
        continue;
      }
      const html = await res.text();
      this.pages.push({ url, status: res.status, html, headers: res.headers });
      const form = /<form method="post" action="([^"]+)">([\s\S]*?)<\/form>/.exec(html);
      if (!form || res.status !== 200) {
        return { finalUrl: url, visited, page: { url, status: res.status, html } };
      }
      const fields = new URLSearchParams();
      for (const m of form[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
        fields.set(m[1], unescape(m[2]));
      }
      fields.set("action", this.consent);
      url = new URL(unescape(form[1]), url).href;
      init = {
        method: "POST",
        body: fields.toString(),
        headers: { "content-type": "application/x-www-form-urlencoded" },
      };
    }
    throw new Error(`too many redirects: ${visited.join(" -> ")}`);
  }
}

function unescape(text: string): string {
  return text.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, "&");
}

export interface ProviderOptions {
  redirectUrl?: string;
  clientName?: string;
  authMethod?: "none" | "client_secret_post" | "client_secret_basic";
  /** Use a client ID metadata document at this URL instead of registration. */
  clientMetadataUrl?: string;
  browser?: HeadlessBrowser;
}

/** An OAuthClientProvider whose redirectToAuthorization drives the HeadlessBrowser. */
export class TestProvider implements OAuthClientProvider {
  readonly browser: HeadlessBrowser;
  info?: OAuthClientInformationMixed;
  savedTokens?: OAuthTokens;
  verifier = "";
  lastAuthorization?: BrowseResult;
  authorizationUrls: URL[] = [];
  clientMetadataUrl?: string;

  constructor(readonly options: ProviderOptions = {}) {
    this.browser = options.browser ?? new HeadlessBrowser();
    this.clientMetadataUrl = options.clientMetadataUrl;
  }

  get redirectUrl(): string {
    return this.options.redirectUrl ?? "http://127.0.0.1:9/callback";
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.options.clientName ?? "SDK test client",
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: this.options.authMethod ?? "none",
    };
  }

  clientInformation() {
    return this.info;
  }

  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }

  tokens() {
    return this.savedTokens;
  }

  saveTokens(tokens: OAuthTokens) {
    this.savedTokens = tokens;
  }

  async redirectToAuthorization(url: URL) {
    this.authorizationUrls.push(url);
    this.lastAuthorization = await this.browser.browse(url.href, this.redirectUrl);
  }

  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }

  codeVerifier() {
    return this.verifier;
  }

  /** The `code` the flow delivered to the redirect URI (throws with the error otherwise). */
  code(): string {
    const final = new URL(this.lastAuthorization!.finalUrl);
    const code = final.searchParams.get("code");
    if (!code) throw new Error(`no code: ${this.lastAuthorization!.finalUrl}`);
    return code;
  }
}

/**
 * Connects the SDK client through the full login: 401, discovery, registration, consent, GitHub,
 * token. `transport: "sse"` uses the legacy HTTP+SSE transport (`url` is then the /sse URL).
 */
export async function connectWithLogin(
  url: string,
  provider: TestProvider,
  fetchFn?: typeof fetch,
  transport: "streamable" | "sse" = "streamable",
): Promise<{ client: Client; transport: StreamableHTTPClientTransport | SSEClientTransport }> {
  const open = () =>
    transport === "sse"
      ? new SSEClientTransport(new URL(url), { authProvider: provider, fetch: fetchFn })
      : new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: fetchFn });
  const first = open();
  const client = new Client({ name: "oauth-test", version: "1.0.0" });
  try {
    await client.connect(first);
    inArrivalOrder(first);
    return { client, transport: first };
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  await first.finishAuth(provider.code());
  await first.close();
  const second = open();
  const again = new Client({ name: "oauth-test", version: "1.0.0" });
  await again.connect(second);
  inArrivalOrder(second);
  return { client: again, transport: second };
}
