/**
 * Per-server access: a server's own `allow` (same shape as the global allow-list) narrows who
 * may use it. A person may use a server when the global allow-list admits them AND the server
 * has no `allow`, or its `allow` admits them too. Each restricted server gets a {@link Policy} of
 * its own, so its users are pinned to GitHub ids and its org and team rules are cached and
 * re-checked exactly as the global ones are (at login, at every refresh, on use at most every
 * 15 minutes). To someone it does not admit, a server answers as an unknown one would.
 * @see https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization#access-token-privilege-restriction
 */
import type { AllowList } from "../config/auth-schema.ts";
import type { ServerConfig } from "../config/schema.ts";
import type { GitHubUser } from "./github.ts";
import type { Policy, Verdict } from "./policy.ts";

/** Who is asking: the GitHub account behind a grant or a request. */
export interface Person {
  userId: number;
  login: string;
}

const OPEN: Verdict = { allowed: true, via: "no per-server allow" };

/**
 * The combined decision for one server: the global verdict narrowed by the server's own
 * (undefined when the server has no `allow`). Pure; the verdicts come from {@link Policy}.
 */
export function narrow(global: Verdict, server: Verdict | undefined): Verdict {
  if (!global.allowed || server === undefined) return global;
  return server;
}

/** The per-server `allow` lists of a config, each decided by its own {@link Policy}. */
export class ServerAccess {
  readonly #policies = new Map<string, Policy>();

  /**
   * `policy` builds the decider of one allow-list (shared store, GitHub client and vault);
   * `label` is its config key, for log lines.
   */
  constructor(
    servers: readonly ServerConfig[],
    policy: (allow: AllowList, label: string) => Policy,
  ) {
    for (const s of servers) {
      if (s.allow) this.#policies.set(s.name, policy(s.allow, `mcpServers.${s.name}.allow`));
    }
  }

  /** Whether `server` has an `allow` of its own (only some people may use it). */
  restricted(server: string): boolean {
    return this.#policies.has(server);
  }

  /** The servers with an `allow` of their own, in config order. */
  get restrictedServers(): string[] {
    return [...this.#policies.keys()];
  }

  /** Whether any server's list has org or team rules (then GitHub is asked for `read:org`). */
  get needsMembership(): boolean {
    return [...this.#policies.values()].some((p) => p.needsMembership);
  }

  /** Resolves and pins every per-server login (at start and on reload). */
  async resolveLogins(): Promise<void> {
    for (const p of this.#policies.values()) await p.resolveLogins();
  }

  /** The server's own decision at sign-in, with the fresh GitHub token; open servers admit. */
  atLogin(user: GitHubUser, githubToken: string, server: string): Promise<Verdict> {
    return this.#policies.get(server)?.atLogin(user, githubToken) ?? Promise.resolve(OPEN);
  }

  /** The server's own decision on refresh and use (cached like the global one). */
  check(person: Person, server: string, maxAgeMs?: number): Promise<Verdict> {
    return this.#policies.get(server)?.check(person.userId, person.login, maxAgeMs) ??
      Promise.resolve(OPEN);
  }

  /** Forgets cached decisions (after a revocation or an owner command). */
  forget(userId?: number): void {
    for (const p of this.#policies.values()) p.forget(userId);
  }
}
