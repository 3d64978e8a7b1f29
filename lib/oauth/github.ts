/**
 * The GitHub leg: the OAuth App's authorization-code flow with PKCE (via oauth4webapi), the
 * REST calls for identity and org/team membership, and revoking the GitHub token when it is not
 * needed. The GitHub token never leaves this module's callers in the oauth folder.
 */
import * as oauth from "oauth4webapi";
import type { GitHubConfig } from "../config/auth-schema.ts";
import { isLoopbackHost } from "../config/hosts.ts";

/** GitHub refused or failed; `code` is GitHub's error code when it sent one. */
export class GitHubError extends Error {
  constructor(message: string, readonly code?: string, readonly status?: number) {
    super(message);
    this.name = "GitHubError";
  }
}

export interface GitHubUser {
  id: number;
  login: string;
}

export interface GitHubToken {
  accessToken: string;
  scope: string;
  /** Present when the app has opted in to expiring user tokens (8 h, refreshable). */
  refreshToken?: string;
}

export type Membership = "active" | "pending" | "none" | "unauthorized";

export interface GitHubDeps {
  fetch: typeof fetch;
  userAgent: string;
}

/** A GitHub OAuth App client for one github.com or GitHub Enterprise Server instance. */
export class GitHubClient {
  readonly #as: oauth.AuthorizationServer;
  readonly #client: oauth.Client;
  readonly #insecure: boolean;

  constructor(readonly config: GitHubConfig, private readonly deps: GitHubDeps) {
    // GitHub publishes no RFC 8414 metadata, so the server description is written by hand; it
    // sends no `iss` in authorization responses, so that is not advertised either.
    this.#as = {
      issuer: config.webUrl,
      authorization_endpoint: `${config.webUrl}/login/oauth/authorize`,
      token_endpoint: `${config.webUrl}/login/oauth/access_token`,
    };
    this.#client = { client_id: config.clientId };
    this.#insecure = new URL(config.webUrl).protocol === "http:" &&
      isLoopbackHost(new URL(config.webUrl).hostname);
  }

  /**
   * The URL that sends the browser to GitHub's consent page.
   * @see https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
   */
  async authorizeUrl(options: {
    redirectUri: string;
    state: string;
    verifier: string;
    scope: string;
  }): Promise<string> {
    const url = new URL(this.#as.authorization_endpoint!);
    url.searchParams.set("client_id", this.config.clientId);
    url.searchParams.set("redirect_uri", options.redirectUri);
    url.searchParams.set("scope", options.scope);
    url.searchParams.set("state", options.state);
    url.searchParams.set(
      "code_challenge",
      await oauth.calculatePKCECodeChallenge(options.verifier),
    );
    url.searchParams.set("code_challenge_method", "S256");
    url.searchParams.set("allow_signup", "false");
    return url.href;
  }

  /**
   * Exchanges the code GitHub sent to the callback (with the PKCE verifier). GitHub answers errors with HTTP 200 and an
   * `error` member; they are turned into a 400 first so oauth4webapi reports them as errors.
   * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
   * @see https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#2-users-are-redirected-back-to-your-site-by-github
   */
  async exchangeCode(
    callback: URL,
    expectedState: string,
    redirectUri: string,
    verifier: string,
  ): Promise<GitHubToken> {
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(this.#as, this.#client, callback, expectedState);
    } catch (error) {
      if (error instanceof oauth.AuthorizationResponseError) {
        throw new GitHubError(`GitHub refused the sign-in (${error.error})`, error.error);
      }
      throw new GitHubError("GitHub's answer to the sign-in was malformed");
    }
    const options = {
      [oauth.allowInsecureRequests]: this.#insecure,
      [oauth.customFetch]: (url: string, init: RequestInit) => this.#rewriteOkErrors(url, init),
    };
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        this.#as,
        this.#client,
        oauth.ClientSecretPost(this.config.clientSecret),
        params,
        redirectUri,
        verifier,
        options,
      );
      const result = await oauth.processAuthorizationCodeResponse(this.#as, this.#client, response);
      return toToken(result);
    } catch (error) {
      if (error instanceof oauth.ResponseBodyError) {
        throw new GitHubError(
          `GitHub refused the code (${error.error})`,
          error.error,
          error.status,
        );
      }
      if (error instanceof GitHubError) throw error;
      throw new GitHubError(`cannot exchange the code with GitHub: ${(error as Error).message}`);
    }
  }

  /**
   * Trades an expiring token's refresh token for a new pair (the old pair stops working).
   * A refusal (e.g. `bad_refresh_token` after the user revoked the app) carries GitHub's code.
   * @see https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens
   */
  async refreshToken(refreshToken: string): Promise<GitHubToken> {
    try {
      const response = await oauth.refreshTokenGrantRequest(
        this.#as,
        this.#client,
        oauth.ClientSecretPost(this.config.clientSecret),
        refreshToken,
        {
          [oauth.allowInsecureRequests]: this.#insecure,
          [oauth.customFetch]: (url: string, init: RequestInit) => this.#rewriteOkErrors(url, init),
        },
      );
      return toToken(await oauth.processRefreshTokenResponse(this.#as, this.#client, response));
    } catch (error) {
      if (error instanceof oauth.ResponseBodyError) {
        throw new GitHubError(
          `GitHub refused the refresh token (${error.error})`,
          error.error,
          error.status,
        );
      }
      throw new GitHubError(`cannot refresh the GitHub token: ${(error as Error).message}`);
    }
  }

  async #rewriteOkErrors(url: string, init: RequestInit): Promise<Response> {
    const response = await this.deps.fetch(url, {
      ...init,
      redirect: "manual",
      signal: AbortSignal.timeout(15_000),
    });
    if (response.status !== 200) return response;
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return new Response(text, { status: 200, headers: response.headers });
    }
    const status = typeof (body as { error?: unknown }).error === "string" ? 400 : 200;
    return new Response(text, { status, headers: { "content-type": "application/json" } });
  }

  /**
   * The signed-in user: the numeric id is what the allow-list keys on.
   * @see https://docs.github.com/en/rest/users/users#get-the-authenticated-user
   */
  async user(token: string): Promise<GitHubUser> {
    const res = await this.#api("/user", token);
    if (res.status === 401) {
      throw new GitHubError("GitHub did not accept the token", "unauthorized", 401);
    }
    if (!res.ok) {
      throw new GitHubError(`GitHub /user answered ${res.status}`, undefined, res.status);
    }
    return toUser(await res.json());
  }

  /**
   * Resolves a login to its account; null when no such account exists.
   * @see https://docs.github.com/en/rest/users/users#get-a-user
   */
  async userByLogin(login: string): Promise<GitHubUser | null> {
    const res = await this.#api(`/users/${encodeURIComponent(login)}`);
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) {
      throw new GitHubError(`GitHub /users/${login} answered ${res.status}`, undefined, res.status);
    }
    return toUser(await res.json());
  }

  /**
   * Org membership of the token's user; only `active` counts. 403 and 404 both mean "not a
   * member" (orgs with OAuth App access restrictions hide their data).
   * @see https://docs.github.com/en/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user
   */
  async orgMembership(token: string, org: string): Promise<Membership> {
    return this.#membership(
      await this.#api(`/user/memberships/orgs/${encodeURIComponent(org)}`, token),
    );
  }

  /** @see https://docs.github.com/en/rest/teams/members#get-team-membership-for-a-user */
  async teamMembership(
    token: string,
    org: string,
    slug: string,
    login: string,
  ): Promise<Membership> {
    const path = `/orgs/${encodeURIComponent(org)}/teams/${encodeURIComponent(slug)}/memberships/${
      encodeURIComponent(login)
    }`;
    return this.#membership(await this.#api(path, token));
  }

  async #membership(res: Response): Promise<Membership> {
    if (res.status >= 500) {
      await res.body?.cancel();
      throw new GitHubError(`GitHub answered ${res.status}`, undefined, res.status);
    }
    if (res.status === 401) {
      await res.body?.cancel();
      return "unauthorized";
    }
    if (!res.ok) {
      await res.body?.cancel();
      return "none";
    }
    const body = await res.json() as { state?: unknown };
    return body.state === "active" ? "active" : body.state === "pending" ? "pending" : "none";
  }

  /**
   * Revokes a GitHub token this proxy no longer needs.
   * @see https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-token
   */
  async revokeToken(token: string): Promise<void> {
    const basic = btoa(`${this.config.clientId}:${this.config.clientSecret}`);
    const res = await this.deps.fetch(
      `${this.config.apiUrl}/applications/${this.config.clientId}/token`,
      {
        method: "DELETE",
        headers: {
          ...this.#headers(),
          authorization: `Basic ${basic}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ access_token: token }),
        redirect: "manual",
        signal: AbortSignal.timeout(15_000),
      },
    );
    await res.body?.cancel();
    if (res.status !== 204 && res.status !== 404) {
      throw new GitHubError(
        `GitHub token revocation answered ${res.status}`,
        undefined,
        res.status,
      );
    }
  }

  #headers(): Record<string, string> {
    return {
      accept: "application/vnd.github+json",
      "x-github-api-version": "2022-11-28",
      "user-agent": this.deps.userAgent,
    };
  }

  #api(path: string, token?: string): Promise<Response> {
    const headers = this.#headers();
    if (token) headers.authorization = `Bearer ${token}`;
    return this.deps.fetch(`${this.config.apiUrl}${path}`, {
      headers,
      redirect: "manual",
      signal: AbortSignal.timeout(15_000),
    });
  }
}

function toToken(result: oauth.TokenEndpointResponse): GitHubToken {
  const token: GitHubToken = {
    accessToken: result.access_token,
    scope: String(result.scope ?? ""),
  };
  if (typeof result.refresh_token === "string") token.refreshToken = result.refresh_token;
  return token;
}

function toUser(body: unknown): GitHubUser {
  const b = body as { id?: unknown; login?: unknown };
  if (typeof b.id !== "number" || typeof b.login !== "string") {
    throw new GitHubError("GitHub sent a user without id or login");
  }
  return { id: b.id, login: b.login };
}
