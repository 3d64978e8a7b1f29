/**
 * One server's side of a merged session: a downstream of that server's child, routed by the
 * router like any session (per-user, per-session or shared), whose messages go to the merged
 * session that owns it.
 */
import type { ServerConfig } from "../../config/schema.ts";
import type { Identity, RoutedSession } from "../../router/router.ts";

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

  /** Initialized and its child not restarting: its items are part of the merged lists. */
  get live(): boolean {
    return this.init !== null && !this.down;
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
}
