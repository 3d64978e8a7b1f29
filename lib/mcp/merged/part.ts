/**
 * One server's side of a merged session: a downstream of that server's child, routed by the
 * router like any session (per-user, per-session or shared), whose messages go to the merged
 * session that owns it.
 */
import type { ServerConfig } from "../../config/schema.ts";
import type { Identity, RoutedSession } from "../../router/router.ts";
import type { PolicyKind } from "../../policy/policy.ts";
import { listChangedLine } from "../../router/list-changes.ts";

/** What a part tells the merged session that owns it. */
export interface PartOwner {
  readonly id: string;
  readonly identity: Identity;
  readonly capabilities: { sampling: boolean; elicitation: boolean; roots: boolean };
  /** A session-wide message from the part's child (a list change, a log message). */
  fromChild(part: Part, text: string): void;
  /** The part's child exited unexpectedly (it is being restarted). */
  childGone(part: Part): void;
  /** The part's child is ready again after an unexpected exit. */
  childBack(part: Part): void;
  /** A new child (process `pid`) serves the part, after any exit or an idle stop. */
  childReady?(part: Part, pid: number): void;
}

export class Part implements RoutedSession {
  readonly id: string;
  logLevel = -1;
  /** The child's InitializeResult once initialized (null before, or when it failed). */
  init: Record<string, unknown> | null = null;
  /** Between an unexpected exit of the child and its restart. */
  down = false;
  /** The person may no longer use the server (its `allow` changed): shown as if it had no child. */
  barred = false;
  /** Its child's start in progress (after initialize), which concurrent lists share. */
  starting: Promise<void> | undefined;

  constructor(private readonly owner: PartOwner, readonly server: ServerConfig) {
    this.id = `${owner.id}/${server.name}`;
  }

  get name(): string {
    return this.server.name;
  }

  get identity(): Identity {
    return this.owner.identity;
  }

  get identityKey(): string {
    return this.owner.identity.key;
  }

  get capabilities(): { sampling: boolean; elicitation: boolean; roots: boolean } {
    return this.owner.capabilities;
  }

  /** Initialized, its child not restarting, and usable: its items are in the merged lists. */
  get live(): boolean {
    return this.init !== null && !this.down && !this.barred;
  }

  /** The child's server capabilities ({} before initialize). */
  get serverCapabilities(): Record<string, unknown> {
    return (this.init?.capabilities ?? {}) as Record<string, unknown>;
  }

  notify(text: string): void {
    this.owner.fromChild(this, text);
  }

  childExited(): void {
    this.down = true;
    this.owner.childGone(this);
  }

  childRestarted(): void {
    this.down = false;
    this.owner.childBack(this);
  }

  childReady(pid: number): void {
    this.owner.childReady?.(this, pid);
  }

  /**
   * The server's filters changed for `kinds` (a reload): the merged lists of the kinds its child
   * has may change, as when the child says so (the merged endpoint always declares listChanged).
   */
  filtersChanged(kinds: readonly PolicyKind[]): void {
    const caps = this.serverCapabilities;
    for (const kind of kinds) if (caps[kind] !== undefined) this.notify(listChangedLine(kind));
  }
}

/** How a merged session's parts change when the person may use the servers `allowed` now. */
export interface AccessChange {
  /** Parts to leave out: the person may no longer use their server. */
  bar: string[];
  /** Left-out parts to show again. */
  restore: string[];
  /** Servers the session has no part for yet. */
  add: string[];
}

/**
 * The change to a merged session's parts for the servers the person may use now (each server's
 * own `allow`, decided on every use as for `/mcp/<name>`). Pure.
 * https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization#access-token-privilege-restriction
 */
export function accessChange(
  parts: readonly { readonly name: string; readonly barred: boolean }[],
  allowed: readonly string[],
): AccessChange {
  const may = new Set(allowed);
  const has = new Set(parts.map((p) => p.name));
  return {
    bar: parts.filter((p) => !p.barred && !may.has(p.name)).map((p) => p.name),
    restore: parts.filter((p) => p.barred && may.has(p.name)).map((p) => p.name),
    add: allowed.filter((name) => !has.has(name)),
  };
}
