/**
 * Which kinds' filters a config reload changed: the kinds whose clients may now see a different
 * list, so each gets its `notifications/<kind>/list_changed`. Pure; compares the rules as
 * written, not the children's lists (which the proxy may not hold), so a change that happens to
 * hide nothing still counts; a reordered or repeated pattern does not.
 * https://modelcontextprotocol.io/specification/2025-11-25/server/tools#list-changed-notification
 */
import type { FilterRules, PolicyKind, PolicyRules } from "./policy.ts";

const KINDS: readonly PolicyKind[] = ["tools", "prompts", "resources"];

/** The kinds whose rules differ between `before` and `after` (absent: no filters at all). */
export function changedKinds(
  before: PolicyRules | null | undefined,
  after: PolicyRules | null | undefined,
): PolicyKind[] {
  return KINDS.filter((kind) => {
    const was = canonical(before?.[kind]);
    const now = canonical(after?.[kind]);
    const readOnly = kind === "tools" && (before?.readOnly === true) !== (after?.readOnly === true);
    return readOnly || was !== now;
  });
}

/**
 * One kind's rules in a form equal for equal meaning: sets of patterns; an absent `allow`
 * (everything) differs from an empty one (nothing), an absent `deny` equals an empty one.
 */
function canonical(rules: FilterRules | undefined): string {
  const set = (patterns: string[]) => [...new Set(patterns)].sort();
  return JSON.stringify({
    allow: rules?.allow ? set(rules.allow) : null,
    deny: set(rules?.deny ?? []),
  });
}
