/**
 * The merged endpoint's answers built from its children's, pure: the capability union, the
 * combined instructions, and the merged list results with names and URIs as clients see them.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#capability-negotiation
 */
import { isRecord } from "../../jsonrpc.ts";
import { listChangedLine } from "../../router/list-changes.ts";
import { NameTable } from "./names.ts";
import type { UriTable } from "./uris.ts";

/**
 * Server capabilities the merged endpoint does not offer even when a child does: `tasks` would
 * need its task ids routed back to the child, which the endpoint does not do.
 */
const NOT_MERGED = new Set(["tasks"]);
/** The lists a child can add to or remove from at any time: the merged ones change too. */
const LISTS = ["tools", "prompts", "resources"] as const;
export type ListKind = typeof LISTS[number];

/**
 * The union of the children's server capabilities: a capability present in any child is present,
 * its flags true when true in any child. `listChanged` is always declared for the lists, since a
 * child that stops or comes back changes them.
 */
export function unionCapabilities(
  all: readonly Record<string, unknown>[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const caps of all) {
    for (const [key, value] of Object.entries(caps)) {
      if (NOT_MERGED.has(key)) continue;
      out[key] = mergeValue(out[key], value);
    }
  }
  for (const kind of LISTS) {
    if (isRecord(out[kind])) out[kind] = { ...out[kind] as object, listChanged: true };
  }
  return out;
}

function mergeValue(a: unknown, b: unknown): unknown {
  if (a === undefined) return isRecord(b) ? mergeValue({}, b) : b;
  if (isRecord(a) && isRecord(b)) {
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = mergeValue(out[k], v);
    return out;
  }
  if (typeof a === "boolean" && typeof b === "boolean") return a || b;
  return a;
}

/** The children's instructions, each under a heading naming its server; undefined if none. */
export function combineInstructions(
  parts: readonly { server: string; instructions?: unknown }[],
): string | undefined {
  const sections = parts
    .filter((p) => typeof p.instructions === "string" && p.instructions.trim() !== "")
    .map((p) => `## ${p.server}\n${(p.instructions as string).trim()}`);
  return sections.length === 0 ? undefined : sections.join("\n\n");
}

/** The items one server listed for one list method. */
export interface ServerItems {
  server: string;
  items: Record<string, unknown>[];
}

/**
 * The list changes a merged session tells its client: each kind once however many children said
 * so in one turn, and only for the lists the session declared at initialize.
 * https://modelcontextprotocol.io/specification/2025-11-25/server/tools#list-changed-notification
 */
export class ListChanges {
  /** The session's declared capabilities (the union). */
  declared: Record<string, unknown> = {};
  readonly #pending = new Set<ListKind>();

  constructor(private readonly notify: (text: string) => void) {}

  /** A merged list of `kind` changed. */
  add(kind: ListKind): void {
    if (this.declared[kind] === undefined) return;
    if (this.#pending.size === 0) queueMicrotask(() => this.#flush());
    this.#pending.add(kind);
  }

  /** Every list of a server with capabilities `caps` changed (it went, came back or joined). */
  ofServer(caps: Record<string, unknown>): void {
    for (const kind of LISTS) if (caps[kind] !== undefined) this.add(kind);
  }

  #flush(): void {
    for (const kind of this.#pending) this.notify(listChangedLine(kind));
    this.#pending.clear();
  }
}

/** Which field names an item and where a list result keeps its items. */
export const LIST_SHAPES = {
  "tools/list": { field: "tools", key: "name" },
  "prompts/list": { field: "prompts", key: "name" },
  "resources/list": { field: "resources", key: "uri" },
  "resources/templates/list": { field: "resourceTemplates", key: "uriTemplate" },
} as const;
export type ListMethod = keyof typeof LIST_SHAPES;

/** The items of one child list result (those with a string key; others are dropped). */
export function itemsOf(method: ListMethod, result: unknown): Record<string, unknown>[] {
  const { field, key } = LIST_SHAPES[method];
  const list = isRecord(result) ? result[field] : undefined;
  if (!Array.isArray(list)) return [];
  return list.filter((item) => isRecord(item) && typeof item[key] === "string");
}

/** A name table for tools or prompts built from the servers' lists, in order. */
export function nameTableOf(separator: string, lists: readonly ServerItems[]): NameTable {
  return NameTable.build(
    separator,
    lists.map(({ server, items }) => ({ server, names: items.map((i) => i.name as string) })),
  );
}

/**
 * Every server's items in one list, as the client sees them: tools and prompts renamed through
 * `names`, resources and templates through `uris`.
 */
export function mergeItems(
  method: ListMethod,
  lists: readonly ServerItems[],
  tables: { names?: NameTable; uris: UriTable },
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const { server, items } of lists) {
    for (const item of items) {
      switch (method) {
        case "tools/list":
        case "prompts/list":
          out.push({ ...item, name: tables.names!.add(server, item.name as string) });
          break;
        case "resources/list":
          out.push({ ...item, uri: tables.uris.exposeUri(server, item.uri as string) });
          break;
        case "resources/templates/list":
          out.push({
            ...item,
            uriTemplate: tables.uris.exposeTemplate(server, item.uriTemplate as string),
          });
      }
    }
  }
  return out;
}
