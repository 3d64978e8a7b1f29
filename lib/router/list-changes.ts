/**
 * Tells the sessions on one child that a reload changed the server's filters for some kinds:
 * what they list of those kinds may differ now, as if the child's lists had changed. A session
 * gets `notifications/<kind>/list_changed` only where the capabilities it was given promise it
 * (`<kind>.listChanged`); the proxy does not declare what the child did not. A downstream that
 * declares its own capabilities (a merged endpoint's part) decides for itself.
 * https://modelcontextprotocol.io/specification/2025-11-25/server/tools#list-changed-notification
 */
import { isRecord } from "../jsonrpc.ts";
import type { PolicyKind } from "../policy/policy.ts";
import type { Downstream } from "./downstream.ts";

const KINDS: readonly PolicyKind[] = ["tools", "prompts", "resources"];

/** The notification for a changed list of `kind`. */
export function listChangedLine(kind: PolicyKind): string {
  return JSON.stringify({ jsonrpc: "2.0", method: `notifications/${kind}/list_changed` });
}

/**
 * The list_changed lines of those of `kinds` whose `listChanged` the capabilities `caps` (the
 * child's, as its sessions were given them) promise.
 */
export function promisedListChanges(
  caps: Record<string, unknown>,
  kinds: readonly PolicyKind[] = KINDS,
): string[] {
  return kinds.filter((kind) => {
    const cap = caps[kind];
    return isRecord(cap) && cap.listChanged === true;
  }).map(listChangedLine);
}

/**
 * Announces changed filters of `kinds` to every session on `mux`. `declared` stands in for the
 * child's capabilities when it is not running (stopped when idle): its sessions were told those.
 */
export function announceFilterChange(
  mux: {
    readonly initResult: { capabilities: Record<string, unknown> } | null;
    readonly sessions: Iterable<Downstream>;
  },
  kinds: readonly PolicyKind[],
  declared: Record<string, unknown> | null,
): void {
  if (kinds.length === 0) return;
  const lines = promisedListChanges(mux.initResult?.capabilities ?? declared ?? {}, kinds);
  for (const session of mux.sessions) {
    if (session.filtersChanged) session.filtersChanged(kinds);
    else for (const line of lines) session.notify(line);
  }
}
