/**
 * The authorization server's shared state and dependencies: config, store, GitHub client,
 * allow-list policy, redirect policy, CIMD resolver and the keys that sign cookies and seal
 * secrets. The endpoint handlers (register, authorize, callback, token, revoke, bearer) take it.
 */
import type { AllowList, AuthConfig } from "../config/auth-schema.ts";
import type { ServerConfig } from "../config/schema.ts";
import { MERGED_SERVER } from "../config/merged-schema.ts";
import type { Logger } from "../log.ts";
import type { AuthMethod, Store } from "../store/store.ts";
import { deriveKey, Hmac, open, seal, sha256 } from "../crypto.ts";
import { GitHubClient, GitHubError, type GitHubToken } from "./github.ts";
import { Policy, type Verdict } from "./policy.ts";
import { narrow, type Person, ServerAccess } from "./server-access.ts";
import { RedirectPolicy } from "./redirect.ts";
import { CimdError, CimdResolver, isCimdClientId } from "./cimd.ts";
import { canonicalResource, resourceUrl } from "./metadata.ts";
import { OAuthError } from "./errors.ts";
import { VERSION } from "../version.ts";
import { BODY_TIMEOUT_MS } from "../http.ts";
import { AccessCache } from "./access-cache.ts";
import { cleanClientName } from "./client-name.ts";
import { Metrics } from "../metrics.ts";

/** A client as the endpoints see it: registered (DCR) or described by a metadata document. */
export interface ResolvedClient {
  clientId: string;
  name: string;
  redirectUris: string[];
  authMethod: AuthMethod;
  secretHash?: string;
  /** The host that served the client's metadata document, for CIMD clients. */
  cimdHost?: string;
  /** Changes whenever the client's redirect URIs change, so consent is asked again. */
  fingerprint: string;
}

export interface OAuthDeps {
  store: Store;
  log: Logger;
  now?: () => number;
  fetch?: typeof fetch;
  resolveDns?: (host: string) => Promise<string[]>;
  /** Time a client has to send a request body (limits.bodyTimeout). */
  bodyTimeoutMs?: number;
  metrics?: Metrics;
  /** Whether the legacy `/sse/<name>` endpoints are served (config `legacySse`, default true). */
  legacySse?: boolean;
  /** Whether the merged endpoint `/mcp` is served (config `merged.enabled`). */
  merged?: boolean;
}

/** Everything the OAuth endpoints share. */
export class OAuthService {
  readonly store: Store;
  readonly log: Logger;
  readonly now: () => number;
  readonly github: GitHubClient;
  readonly redirects: RedirectPolicy;
  readonly cimd: CimdResolver;
  policy: Policy;
  /** The per-server `allow` lists, narrowing {@link policy} for their servers. */
  access: ServerAccess;
  readonly callbackUrl: string;
  /** Every accepted resource indicator, mapped to the audience stored in its tokens. */
  readonly audiences: Map<string, string>;
  readonly legacySse: boolean;
  /** The merged endpoint `/mcp` is served: a resource of its own, with its own audience. */
  readonly merged: boolean;
  readonly bodyTimeoutMs: number;
  readonly accessCache = new AccessCache();
  readonly metrics: Metrics;
  /** GitHub token refreshes in flight per user: a refresh token works once. */
  readonly #refreshing = new Map<number, Promise<string | null>>();
  #reloads = 0;
  /** The servers with the `allow` lists in force (the reloaded ones after a SIGHUP). */
  #running: readonly ServerConfig[];

  private constructor(
    readonly auth: AuthConfig,
    readonly servers: ServerConfig[],
    deps: OAuthDeps,
    readonly hmac: Hmac,
    readonly vaultKey: CryptoKey,
  ) {
    this.store = deps.store;
    this.log = deps.log;
    // Any revocation in this process drops the cached token checks.
    this.store.onRevoke = () => this.accessCache.clear();
    this.bodyTimeoutMs = deps.bodyTimeoutMs ?? BODY_TIMEOUT_MS;
    this.metrics = deps.metrics ?? new Metrics();
    this.now = deps.now ?? Date.now;
    const doFetch = deps.fetch ?? fetch;
    this.github = new GitHubClient(auth.github, {
      fetch: doFetch,
      userAgent: `mcp-oauth-proxy/${VERSION}`,
    });
    this.redirects = new RedirectPolicy({ extra: auth.oauth.redirectUris });
    this.cimd = new CimdResolver({
      fetch: doFetch,
      now: this.now,
      resolveDns: deps.resolveDns,
      allowedHosts: auth.oauth.clientMetadataHosts,
      redirects: this.redirects,
      shared: {
        get: (clientId) => this.store.getCimd(clientId),
        put: (clientId, doc, expiresAt) => this.store.putCimd(clientId, doc, expiresAt),
      },
    });
    this.policy = this.#policy(auth.allow);
    this.access = new ServerAccess(servers, (allow, label) => this.#policy(allow, label));
    this.#running = servers;
    this.callbackUrl = `${auth.publicUrl}/auth/callback`;
    this.legacySse = deps.legacySse ?? true;
    this.merged = deps.merged ?? false;
    this.audiences = new Map([[auth.publicUrl, auth.publicUrl]]);
    if (this.merged) {
      const merged = resourceUrl(auth, MERGED_SERVER);
      this.audiences.set(merged, merged);
    }
    for (const { name } of servers) {
      const audience = resourceUrl(auth, name);
      this.audiences.set(audience, audience);
      // The legacy URL names the same server: its tokens carry the /mcp audience.
      if (this.legacySse) this.audiences.set(resourceUrl(auth, name, "sse"), audience);
    }
  }

  /** Loads the persisted keys and builds the service. */
  static async create(
    auth: AuthConfig,
    servers: ServerConfig[],
    deps: OAuthDeps,
  ): Promise<OAuthService> {
    const hmac = await Hmac.create(await deps.store.key("cookie-hmac"));
    const vaultKey = await deriveKey(await deps.store.key("vault"), "github-token");
    return new OAuthService(auth, servers, deps, hmac, vaultKey);
  }

  #policy(allow: AllowList, label?: string): Policy {
    return new Policy(allow, {
      label,
      store: this.store,
      github: this.github,
      vault: {
        get: (userId) => this.githubToken(userId),
        refresh: (userId) => this.refreshGitHubToken(userId),
      },
      log: this.log,
      now: this.now,
    });
  }

  /**
   * Asks the allow-list whether the holder of a grant is still admitted; a definite "no" revokes
   * the grant (a GitHub outage only refuses, it never revokes).
   */
  async admit(
    grantId: string,
    userId: number,
    login: string,
    when: "on use" | "at refresh",
    maxAgeMs?: number,
  ): Promise<boolean> {
    const verdict = await this.policy.check(userId, login, maxAgeMs);
    if (verdict.allowed) return true;
    if (!verdict.transient) {
      await this.store.revokeGrant(grantId, `allow-list: ${verdict.reason}`, this.now());
    }
    this.log.warn(
      `refused ${when} by the allow-list${verdict.transient ? "" : "; grant revoked"}`,
      {
        user_id: userId,
        login,
        reason: verdict.reason,
      },
    );
    return false;
  }

  /** Whether any allow-list (global or a server's) has org or team rules. */
  get needsMembership(): boolean {
    return this.policy.needsMembership || this.access.needsMembership;
  }

  /** The GitHub scope to request at sign-in: `read:org` only when org or team rules exist. */
  get githubScope(): string {
    return this.needsMembership ? "read:org" : "";
  }

  /** The server an audience names, or null for the whole origin (or an unknown audience). */
  serverOf(audience: string): string | null {
    const prefix = `${this.auth.publicUrl}/mcp/`;
    if (!audience.startsWith(prefix)) return null;
    const name = audience.slice(prefix.length);
    return this.servers.some((s) => s.name === name) ? name : null;
  }

  /**
   * Whether `person` may use `server` now: the global allow-list and the server's own `allow`,
   * both cached as on use (at most 15 minutes). Never revokes anything; for listings (the merged
   * endpoint, the consent page) and for any caller that already authenticated a token.
   */
  async mayUseServer(person: Person, server: string, maxAgeMs?: number): Promise<boolean> {
    const global = await this.policy.check(person.userId, person.login, maxAgeMs);
    const own = global.allowed ? await this.access.check(person, server, maxAgeMs) : undefined;
    return narrow(global, own).allowed;
  }

  /**
   * The server's own `allow` for the holder of a grant (the global allow-list was asked first).
   * A definite "no" revokes the grant only when the grant was for that server alone: a grant for
   * the whole origin still serves the person's other servers. A GitHub outage only refuses.
   */
  async admitServer(
    grant: { id: string; userId: number; login: string; resource: string },
    server: string,
    when: "on use" | "at refresh" | "at code exchange",
    maxAgeMs?: number,
  ): Promise<boolean> {
    const verdict: Verdict = await this.access.check(grant, server, maxAgeMs);
    if (verdict.allowed) return true;
    const list = `mcpServers.${server}.allow`;
    const revoke = !verdict.transient && grant.resource === resourceUrl(this.auth, server);
    if (revoke) await this.store.revokeGrant(grant.id, `${list}: ${verdict.reason}`, this.now());
    this.log.warn(`refused ${when} by ${list}${revoke ? "; grant revoked" : ""}`, {
      user_id: grant.userId,
      login: grant.login,
      server,
      reason: verdict.reason,
    });
    return false;
  }

  /** Drops every cached decision: an owner command changed the store from another process. */
  invalidate(): void {
    this.accessCache.clear();
    this.policy.forget();
    this.access.forget();
  }

  /** Drops one person's cached decisions (their token was revoked). */
  forgetUser(userId: number): void {
    this.policy.forget(userId);
    this.access.forget(userId);
  }

  /**
   * Swaps in a new allow-list and new per-server `allow` lists (SIGHUP); cached decisions are
   * dropped. Reloads may overlap (resolving logins asks GitHub): only the newest one swaps in.
   * Returns false when a newer reload superseded this one.
   */
  async reloadAllowList(auth: AuthConfig, servers?: readonly ServerConfig[]): Promise<boolean> {
    const generation = ++this.#reloads;
    const policy = this.#policy(auth.allow);
    const running = this.#reloadedServers(servers);
    const access = new ServerAccess(running, (allow, label) => this.#policy(allow, label));
    await policy.resolveLogins();
    await access.resolveLogins();
    if (generation !== this.#reloads) return false;
    this.policy = policy;
    this.access = access;
    this.#running = running;
    this.accessCache.clear();
    return true;
  }

  /**
   * The running servers with the `allow` of the reloaded config: servers are added or removed
   * only by a restart, so a server missing from the new file keeps its running `allow`.
   */
  #reloadedServers(next: readonly ServerConfig[] | undefined): readonly ServerConfig[] {
    if (!next) return this.#running;
    const byName = new Map(next.map((s) => [s.name, s]));
    return this.#running.map((s) =>
      byName.has(s.name) ? { ...s, allow: byName.get(s.name)!.allow } : s
    );
  }

  /**
   * The client behind a client_id (registered, or described by a metadata document); throws
   * OAuthError(invalid_client) when there is none.
   * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.2
   * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document-00#section-4
   */
  async client(clientId: string): Promise<ResolvedClient> {
    if (isCimdClientId(clientId)) {
      try {
        const doc = await this.cimd.resolve(clientId);
        return {
          clientId,
          name: doc.client_name,
          redirectUris: [...doc.redirect_uris],
          authMethod: "none",
          cimdHost: new URL(clientId).host,
          fingerprint: await sha256(JSON.stringify(doc.redirect_uris)),
        };
      } catch (error) {
        const message = error instanceof CimdError
          ? error.message
          : "its metadata document could not be read";
        throw new OAuthError("invalid_client", `client ${clientId}: ${message}`, 401);
      }
    }
    const record = clientId.length <= 200 ? await this.store.getClient(clientId) : null;
    if (!record) throw new OAuthError("invalid_client", "unknown client; register again", 401);
    return {
      clientId,
      // Records stored before names were cleaned at registration are cleaned here.
      name: cleanClientName(record.clientName ?? "") || "(unnamed client)",
      redirectUris: record.redirectUris,
      authMethod: record.authMethod,
      secretHash: record.secretHash,
      fingerprint: await sha256(`${record.createdAt}|${JSON.stringify(record.redirectUris)}`),
    };
  }

  /**
   * Whether `requested` matches one of the client's redirect URIs (loopback on any port).
   * @see https://www.rfc-editor.org/rfc/rfc9700#section-2.1
   * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
   */
  redirectAllowed(client: ResolvedClient, requested: string): boolean {
    return client.redirectUris.some((registered) => RedirectPolicy.matches(registered, requested));
  }

  /**
   * The audience for a `resource` parameter, or null if it is not one of ours: the whole origin,
   * or one server (named by its `/mcp` or its `/sse` URL; both give the `/mcp` audience).
   * @see https://www.rfc-editor.org/rfc/rfc8707#section-2
   */
  audience(resource: string | null): string | null {
    if (resource === null) return this.auth.publicUrl;
    const canonical = canonicalResource(resource);
    return (canonical && this.audiences.get(canonical)) ?? null;
  }

  /** Keeps the user's GitHub token (and refresh token, if any) sealed, for org and team re-checks. */
  async keepGitHubToken(userId: number, token: GitHubToken): Promise<void> {
    const kept = { a: token.accessToken, r: token.refreshToken };
    await this.store.putGitHubToken(userId, await seal(this.vaultKey, JSON.stringify(kept)));
  }

  async #kept(userId: number): Promise<{ a: string; r?: string } | null> {
    const sealed = await this.store.getGitHubToken(userId);
    const text = sealed ? await open(this.vaultKey, sealed) : null;
    if (text === null) return null;
    try {
      const kept = JSON.parse(text);
      if (typeof kept?.a === "string") return kept;
    } catch { /* a bare token */ }
    return { a: text };
  }

  async githubToken(userId: number): Promise<string | null> {
    return (await this.#kept(userId))?.a ?? null;
  }

  /**
   * Refreshes an expiring GitHub token (GitHub answered 401 to the kept one): the new access
   * token, or null when there is no refresh token or GitHub refused it (the user revoked the
   * app). Throws GitHubError (no code) when GitHub could not be reached.
   */
  refreshGitHubToken(userId: number): Promise<string | null> {
    let pending = this.#refreshing.get(userId);
    if (!pending) {
      pending = (async () => {
        const kept = await this.#kept(userId);
        if (!kept?.r) return null;
        let fresh: GitHubToken;
        try {
          fresh = await this.github.refreshToken(kept.r);
        } catch (error) {
          if (error instanceof GitHubError && error.code) return null;
          throw error;
        }
        await this.keepGitHubToken(userId, fresh);
        return fresh.accessToken;
      })().finally(() => this.#refreshing.delete(userId));
      this.#refreshing.set(userId, pending);
    }
    return pending;
  }
}
