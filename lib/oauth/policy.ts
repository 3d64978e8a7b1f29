/**
 * The allow-list policy, asked at login, at every refresh and on use. Users are keyed by their
 * numeric GitHub id; a configured login is resolved to an id once and pinned, so a renamed and
 * re-registered login cannot inherit access. Org and team rules need the user's GitHub token
 * (kept sealed) and are re-checked at most every 15 minutes, never per request.
 */
import type { AllowList } from "../config/auth-schema.ts";
import type { Logger } from "../log.ts";
import type { Store } from "../store/store.ts";
import { type GitHubClient, GitHubError, type GitHubUser } from "./github.ts";

export const RECHECK_MS = 15 * 60_000;

/** GitHub refused the kept token even after a refresh: the user revoked the app. */
const REVOKED_BY_USER: Verdict = {
  allowed: false,
  reason: "the user revoked the GitHub authorization",
};

export type Verdict =
  | { allowed: true; via: string }
  | { allowed: false; reason: string; transient?: boolean };

export interface TokenVault {
  /** The user's GitHub token, if the proxy kept one. */
  get(userId: number): Promise<string | null>;
  /** A fresh token for an expired one (GitHub answered 401), or null if it cannot be refreshed. */
  refresh?(userId: number): Promise<string | null>;
}

/** Decides who is admitted. Build a new one when the config's allow-list changes. */
export class Policy {
  readonly #cache = new Map<number, { verdict: Verdict; at: number }>();
  readonly #conflicts = new Set<string>();

  constructor(
    readonly allow: AllowList,
    private readonly deps: {
      store: Store;
      github: GitHubClient;
      vault: TokenVault;
      log: Logger;
      now: () => number;
      /** The list's key in the config, for log lines: `allow` or `mcpServers.NAME.allow`. */
      label?: string;
    },
  ) {}

  get #key(): string {
    return this.deps.label ?? "allow";
  }

  /** The GitHub scope to request: `read:org` only when org or team rules exist. */
  get githubScope(): string {
    return this.needsMembership ? "read:org" : "";
  }

  get needsMembership(): boolean {
    return this.allow.orgs.length > 0 || this.allow.teams.length > 0;
  }

  /** Resolves configured logins to ids and pins them; a pin that changed is refused and logged. */
  async resolveLogins(): Promise<void> {
    for (const login of this.allow.logins) {
      let user: GitHubUser | null;
      try {
        user = await this.deps.github.userByLogin(login);
      } catch (error) {
        this.deps.log.warn(
          "cannot resolve an allow-listed login now; will pin it at first sign-in",
          {
            login,
            error: (error as Error).message,
          },
        );
        continue;
      }
      if (!user) {
        this.deps.log.warn(`${this.#key}.users: no GitHub account has this login`, { login });
        continue;
      }
      await this.#pin(login, user.id);
    }
  }

  /** Pins `login` to `id`, or records a conflict if it was pinned to another id. */
  async #pin(login: string, id: number): Promise<boolean> {
    const pin = await this.deps.store.getPin(login);
    if (!pin) {
      await this.deps.store.putPin(login, { id, pinnedAt: this.deps.now() });
      this.deps.log.info("pinned allow-listed login to its GitHub id", { login, id });
      return true;
    }
    if (pin.id === id) return true;
    this.#conflicts.add(login);
    this.deps.log.error(
      `${this.#key}.users: login "${login}" now belongs to GitHub id ${id}, but was pinned to id ${pin.id} ` +
        `(a renamed or re-registered account); it is refused until you list the numeric id ` +
        `you mean in ${this.#key}.users`,
      { login, id, pinned: pin.id },
    );
    return false;
  }

  /** The decision at sign-in, with the fresh GitHub token (needed for org and team rules). */
  async atLogin(user: GitHubUser, githubToken: string): Promise<Verdict> {
    const verdict = await this.#byUser(user) ?? await this.#byMembership(user, githubToken);
    // A GitHub outage at one sign-in must not override the decision the user's grants rely on.
    if (verdict.allowed || !verdict.transient) {
      this.#cache.set(user.id, { verdict, at: this.deps.now() });
    }
    return verdict;
  }

  /** The decision on refresh and on use: cached for at most RECHECK_MS. */
  async check(userId: number, login: string, maxAgeMs = RECHECK_MS): Promise<Verdict> {
    const cached = this.#cache.get(userId);
    if (cached && this.deps.now() - cached.at < maxAgeMs) return cached.verdict;
    const user = { id: userId, login };
    let verdict = await this.#byUser(user, false);
    if (!verdict) {
      const token = this.needsMembership ? await this.deps.vault.get(userId) : null;
      verdict = token
        ? await this.#byMembership(user, token, true)
        : { allowed: false, reason: "not on the allow-list" };
    }
    if (!verdict.allowed && verdict.transient && cached?.verdict.allowed) {
      // GitHub is unreachable: an outage must not cut off people who were allowed. Keep the
      // last decision and ask again in a minute (whatever the caller's maximum age).
      this.deps.log.warn("keeping the last allow-list decision; GitHub did not answer", { login });
      this.#cache.set(userId, {
        verdict: cached.verdict,
        at: this.deps.now() - RECHECK_MS + 60_000,
      });
      return cached.verdict;
    }
    this.#cache.set(userId, { verdict, at: this.deps.now() });
    return verdict;
  }

  /** Forgets cached decisions (after a revocation or a reload). */
  forget(userId?: number): void {
    if (userId === undefined) this.#cache.clear();
    else this.#cache.delete(userId);
  }

  /** An id or pinned-login rule that admits the user, or undefined. */
  async #byUser(user: GitHubUser, mayPin = true): Promise<Verdict | undefined> {
    if (this.allow.ids.includes(user.id)) return { allowed: true, via: `${this.#key}.users (id)` };
    for (const login of this.allow.logins) {
      if (this.#conflicts.has(login)) continue;
      const pin = await this.deps.store.getPin(login);
      if (pin?.id === user.id) return { allowed: true, via: `${this.#key}.users (${login})` };
      // Not pinned yet (GitHub was unreachable at start): pin at first sign-in by that login.
      if (!pin && mayPin && user.login.toLowerCase() === login && await this.#pin(login, user.id)) {
        return { allowed: true, via: `${this.#key}.users (${login})` };
      }
    }
    return undefined;
  }

  async #byMembership(user: GitHubUser, token: string, mayRefresh = false): Promise<Verdict> {
    if (!this.needsMembership) return { allowed: false, reason: "not on the allow-list" };
    try {
      let verdict = await this.#memberships(user, token);
      if (verdict === "unauthorized" && mayRefresh && this.deps.vault.refresh) {
        // An expiring GitHub token (opt-in 8 h expiry) is refreshed before concluding that
        // the user revoked the app.
        const fresh = await this.deps.vault.refresh(user.id);
        if (fresh) verdict = await this.#memberships(user, fresh);
      }
      return verdict === "unauthorized" ? REVOKED_BY_USER : verdict;
    } catch (error) {
      const message = error instanceof GitHubError ? error.message : String(error);
      return {
        allowed: false,
        reason: `cannot check membership with GitHub: ${message}`,
        transient: true,
      };
    }
  }

  /** The org and team rules with one token; "unauthorized" when GitHub refused the token. */
  async #memberships(user: GitHubUser, token: string): Promise<Verdict | "unauthorized"> {
    for (const org of this.allow.orgs) {
      const state = await this.deps.github.orgMembership(token, org);
      if (state === "unauthorized") return state;
      if (state === "active") return { allowed: true, via: `${this.#key}.orgs (${org})` };
      this.deps.log.info("not an active member of an allow-listed org", {
        login: user.login,
        org,
        state,
        hint: "orgs with OAuth App access restrictions hide membership from unapproved apps",
      });
    }
    for (const team of this.allow.teams) {
      const state = await this.deps.github.teamMembership(token, team.org, team.slug, user.login);
      if (state === "unauthorized") return state;
      if (state === "active") {
        return { allowed: true, via: `${this.#key}.teams (${team.org}/${team.slug})` };
      }
    }
    return { allowed: false, reason: "not an active member of an allow-listed org or team" };
  }
}
