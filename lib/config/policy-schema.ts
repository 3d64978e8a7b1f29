/**
 * A server's filters in the config file: `tools`, `prompts` and `resources` (each
 * `{ "allow": [globs], "deny": [globs] }`) and `readOnly`. Every pattern is compiled here, so a
 * bad glob is a config error with its key path, never a surprise at the first request.
 */
import {
  boolean,
  type Checker,
  type JsonObject,
  keyPath,
  knownKeys,
  object,
  typeName,
} from "./check.ts";
import { type GlobKind, globProblem } from "../policy/glob.ts";
import type { FilterRules, PolicyKind, PolicyRules } from "../policy/policy.ts";

/** The server keys this module reads. */
export const POLICY_KEYS = ["tools", "prompts", "resources", "readOnly"] as const;

const GLOB_KIND: Record<PolicyKind, GlobKind> = {
  tools: "name",
  prompts: "name",
  resources: "uri",
};
/** More patterns than anyone writes by hand. */
const MAX_PATTERNS = 1000;

/** The server's filters, or undefined when it has none (everything passes). */
export function parsePolicy(
  ck: Checker,
  entry: JsonObject,
  path: string,
): PolicyRules | undefined {
  const rules: PolicyRules = {};
  for (const kind of ["tools", "prompts", "resources"] as const) {
    const filter = parseFilter(ck, entry[kind], keyPath(path, kind), kind);
    if (filter) rules[kind] = filter;
  }
  if (boolean(ck, entry, "readOnly", path)) rules.readOnly = true;
  return Object.keys(rules).length === 0 ? undefined : rules;
}

function parseFilter(
  ck: Checker,
  value: unknown,
  path: string,
  kind: PolicyKind,
): FilterRules | undefined {
  const obj = object(ck, value, path);
  if (!obj) return undefined;
  knownKeys(ck, obj, path, ["allow", "deny"]);
  const out: FilterRules = {};
  for (const list of ["allow", "deny"] as const) {
    const patterns = parsePatterns(ck, obj[list], keyPath(path, list), GLOB_KIND[kind]);
    if (patterns) out[list] = patterns;
  }
  if (out.allow === undefined && out.deny === undefined) {
    ck.fail(path, `expected "allow" and/or "deny" (lists of glob patterns)`);
    return undefined;
  }
  return out;
}

function parsePatterns(
  ck: Checker,
  value: unknown,
  path: string,
  glob: GlobKind,
): string[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") {
    return ck.fail(path, `expected an array of glob patterns, got a string (write ["${value}"])`);
  }
  if (!Array.isArray(value)) {
    return ck.fail(path, `expected an array of glob patterns, got ${typeName(value)}`);
  }
  if (value.length > MAX_PATTERNS) return ck.fail(path, `at most ${MAX_PATTERNS} patterns`);
  const out: string[] = [];
  value.forEach((item, i) => {
    const at = keyPath(path, i);
    if (typeof item !== "string") return ck.fail(at, `expected a string, got ${typeName(item)}`);
    const problem = globProblem(item, glob);
    if (problem) return ck.fail(at, `bad pattern ${JSON.stringify(item)}: ${problem}`);
    out.push(item);
  });
  return out;
}
