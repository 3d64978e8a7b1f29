/**
 * What the router needs of the downstream side: a session (who asked, what it can answer) and
 * the reply channel of one request. The transports implement both.
 */
import type { PolicyKind } from "../policy/policy.ts";

/** Where the messages about one downstream request go. */
export interface Reply {
  /** True when the response can carry messages before the final one (an SSE stream). */
  readonly streaming: boolean;
  /**
   * True while the request waits on its client rather than on the child (an MCP 2026-07-28
   * multi round-trip request between rounds): the child's unrelated messages are not its, and
   * it takes a server-to-client request only when no other caller could.
   */
  readonly waiting?: boolean;
  /** A message related to the request (progress, log, server-to-client request). */
  send(text: string): void;
  /** The final response; nothing follows it. */
  end(text: string): void;
  /**
   * The child's final response as the parsed message, instead of `end`, for a reply that
   * reshapes it anyway (an MCP 2026-07-28 call): it is not serialized only to be parsed again.
   */
  endMessage?(message: Record<string, unknown>): void;
}

/** A downstream session as the multiplexer sees it. */
export interface Downstream {
  readonly id: string;
  /** The person behind the session: server-to-client requests never cross from one to another. */
  readonly identityKey: string;
  /** The client capabilities it declared in `initialize`. */
  readonly capabilities: { sampling: boolean; elicitation: boolean; roots: boolean };
  /** Minimum MCP log level rank this session wants; -1 for all. */
  logLevel: number;
  /** A session-wide message (list changes) for the session's standalone stream. */
  notify(text: string): void;
  /** Its child exited unexpectedly and is being restarted (a merged endpoint drops its items). */
  childExited?(): void;
  /** Its child is ready again after an unexpected exit. */
  childRestarted?(): void;
  /**
   * A child (re)started under the session and is ready, after an exit or an idle stop: state
   * the session set up at the old child (resource subscriptions) is gone. `pid` tells one new
   * child from another.
   */
  childReady?(pid: number): void;
  /**
   * A reload changed the server's filters for `kinds`; without this the session gets each such
   * kind's list_changed where the child declared `listChanged` (lib/router/list-changes.ts).
   */
  filtersChanged?(kinds: readonly PolicyKind[]): void;
}
