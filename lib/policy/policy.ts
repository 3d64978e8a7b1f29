/**
 * The per-server filters: which tools, prompts, resources and resource templates of a child
 * the proxy shows and lets through. Pure rules, no I/O: the router asks `Policy` about each
 * item of a list result and about the item each call, get, read, subscribe or completion names.
 *
 * Rules, in order: a `deny` pattern that matches hides the item; else, when `allow` is given,
 * an item no `allow` pattern matches is hidden; else, for tools under `readOnly`, a tool whose
 * annotations do not say `readOnlyHint: true` is hidden (no annotations: hidden, fail closed).
 * A kind without a filter shows everything.
 * Tool annotations: https://modelcontextprotocol.io/specification/2025-06-18/server/tools#tool
 *
 * @example
 * ```ts
 * const policy = new Policy({ tools: { deny: ["*write*"] }, readOnly: true });
 * policy.tool({ name: "write_file", annotations: { readOnlyHint: true } });
 * // { allowed: false, rule: 'tools.deny "*write*"' }
 * ```
 */
import { compileGlob, type GlobKind } from "./glob.ts";

/** One kind's patterns as the config gives them; absent lists mean "no such rule". */
export interface FilterRules {
  allow?: string[];
  deny?: string[];
}

/** A server's filters as the config gives them (`mcpServers.<name>.tools` ...). */
export interface PolicyRules {
  tools?: FilterRules;
  prompts?: FilterRules;
  resources?: FilterRules;
  /** Only tools annotated `readOnlyHint: true`. */
  readOnly?: boolean;
}

/** The filtered kinds, named as the config keys are. */
export type PolicyKind = "tools" | "prompts" | "resources";

/** What the policy says of one item: shown, or hidden by `rule` (for the audit log). */
export type Decision = { allowed: true } | { allowed: false; rule: string };

/** A tool as `tools/list` describes it (only what the rules read). */
export interface ToolFacts {
  name: string;
  annotations?: unknown;
}

const ALLOWED: Decision = { allowed: true };

/** A compiled `{allow, deny}` pair of one kind. */
class Filter {
  readonly #allow: { pattern: string; re: RegExp }[] | null;
  readonly #deny: { pattern: string; re: RegExp }[];

  constructor(readonly kind: PolicyKind, rules: FilterRules, glob: GlobKind) {
    const compile = (pattern: string) => ({ pattern, re: compileGlob(pattern, glob) });
    this.#allow = rules.allow ? rules.allow.map(compile) : null;
    this.#deny = (rules.deny ?? []).map(compile);
  }

  decide(value: string): Decision {
    for (const { pattern, re } of this.#deny) {
      if (re.test(value)) return { allowed: false, rule: `${this.kind}.deny ${quote(pattern)}` };
    }
    if (this.#allow && !this.#allow.some(({ re }) => re.test(value))) {
      return { allowed: false, rule: `${this.kind}.allow (no pattern matches)` };
    }
    return ALLOWED;
  }
}

/** One server's filters, compiled once (patterns were validated with the config). */
export class Policy {
  readonly #tools: Filter | null;
  readonly #prompts: Filter | null;
  readonly #resources: Filter | null;
  readonly readOnly: boolean;

  /** Throws GlobError on a bad pattern (the config loader reports those first, with key paths). */
  constructor(readonly rules: PolicyRules = {}) {
    this.#tools = rules.tools ? new Filter("tools", rules.tools, "name") : null;
    this.#prompts = rules.prompts ? new Filter("prompts", rules.prompts, "name") : null;
    this.#resources = rules.resources ? new Filter("resources", rules.resources, "uri") : null;
    this.readOnly = rules.readOnly === true;
  }

  /** Whether any rule applies to `kind` (a kind without rules is passed through untouched). */
  filters(kind: PolicyKind): boolean {
    switch (kind) {
      case "tools":
        return this.#tools !== null || this.readOnly;
      case "prompts":
        return this.#prompts !== null;
      case "resources":
        return this.#resources !== null;
    }
  }

  /** Whether any kind is filtered. */
  get any(): boolean {
    return this.filters("tools") || this.filters("prompts") || this.filters("resources");
  }

  /** A tool, by its name and annotations (tools/list item). */
  tool(tool: ToolFacts): Decision {
    const byName = this.#tools?.decide(tool.name) ?? ALLOWED;
    if (!byName.allowed || !this.readOnly) return byName;
    const annotations = tool.annotations;
    const readOnly = typeof annotations === "object" && annotations !== null &&
      (annotations as Record<string, unknown>).readOnlyHint === true;
    return readOnly ? ALLOWED : { allowed: false, rule: "readOnly (no readOnlyHint: true)" };
  }

  /** A prompt, by name. */
  prompt(name: string): Decision {
    return this.#prompts?.decide(name) ?? ALLOWED;
  }

  /**
   * A concrete resource URI (resources/list item, read, subscribe). When resources are
   * filtered, a URI that could reach elsewhere once the child normalises it (dot segments,
   * encoded `/`, `\` or `.`, a backslash) is refused outright (RFC 3986 §5.2.4 and §2.4,
   * https://www.rfc-editor.org/rfc/rfc3986#section-5.2.4).
   */
  resource(uri: string): Decision {
    if (!this.#resources) return ALLOWED;
    if (!canonicalUri(uri)) {
      return { allowed: false, rule: "resources (URI with dot segments or encoded separators)" };
    }
    return this.#resources.decide(uri);
  }

  /** A resource template, by its `uriTemplate` text (RFC 6570 braces match themselves). */
  template(uriTemplate: string): Decision {
    return this.#resources?.decide(uriTemplate) ?? ALLOWED;
  }
}

/** No dot segment, no percent-encoded `/`, `\` or `.`, and no backslash anywhere. */
export function canonicalUri(uri: string): boolean {
  if (uri.includes("\\")) return false;
  if (/%(2f|5c|2e)/i.test(uri)) return false;
  return !/(^|\/)\.{1,2}(\/|$|[?#])/.test(uri);
}

function quote(pattern: string): string {
  return JSON.stringify(pattern);
}

/**
 * A server's filters in one line for `check`, e.g.
 * `tools allow "read_*" deny "*write*"; readOnly; prompts deny "*"`.
 */
export function describePolicy(rules: PolicyRules): string {
  const parts: string[] = [];
  const list = (patterns: string[]) => patterns.map(quote).join(", ") || "(none)";
  for (const kind of ["tools", "prompts", "resources"] as const) {
    const filter = rules[kind];
    if (!filter) continue;
    const words: string[] = [kind];
    if (filter.allow) words.push("allow", list(filter.allow));
    if (filter.deny) words.push("deny", list(filter.deny));
    parts.push(words.join(" "));
    if (kind === "tools" && rules.readOnly) parts.push("readOnly");
  }
  if (rules.readOnly && !rules.tools) parts.unshift("readOnly");
  return parts.join("; ");
}
