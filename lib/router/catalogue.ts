/**
 * What one child lists (its tools, prompts or resource templates), fetched by the proxy itself,
 * every page, when first needed, and kept until the child says the list changed or a new child
 * takes its place. Concurrent askers share one fetch; a failed fetch is not kept.
 * Pagination: https://modelcontextprotocol.io/specification/2025-06-18/server/utilities/pagination
 */
import { isRecord } from "../jsonrpc.ts";

/** Fetches one page of a list (the `result`); throws when the child answers an error. */
export type ListPage = (cursor: string | undefined) => Promise<Record<string, unknown>>;

/** Pages read at most, so a child whose cursor never ends cannot keep the proxy busy. */
export const MAX_PAGES = 50;

/** Which list: the result key holding the items and the field naming each. */
export interface ListShape {
  /** `tools`, `prompts` or `resourceTemplates`. */
  key: string;
  /** `name`, or `uriTemplate` for templates. */
  nameField: string;
}

/** One list of one child, by item name. */
export class ListCatalogue<T extends Record<string, unknown> = Record<string, unknown>> {
  #items: Promise<ReadonlyMap<string, T>> | null = null;
  #known: ReadonlyMap<string, T> | null = null;

  constructor(private readonly shape: ListShape, private readonly fetchPage: ListPage) {}

  /** Every item, by name: the kept list, or a fresh one (pagination followed). */
  all(): Promise<ReadonlyMap<string, T>> {
    if (this.#items) return this.#items;
    const loading = this.#load();
    this.#items = loading;
    loading.then(
      (items) => {
        if (this.#items === loading) this.#known = items;
      },
      () => {
        if (this.#items === loading) this.#items = null;
      },
    );
    return loading;
  }

  /** The kept list when there is one, without waiting (null while none is kept). */
  get known(): ReadonlyMap<string, T> | null {
    return this.#known;
  }

  /** One item, or undefined when the child does not list it. */
  async get(name: string): Promise<T | undefined> {
    return (await this.all()).get(name);
  }

  /** Forgets the kept list (the child's list changed, or the child is another one now). */
  invalidate(): void {
    this.#items = null;
    this.#known = null;
  }

  async #load(): Promise<ReadonlyMap<string, T>> {
    const { key, nameField } = this.shape;
    const out = new Map<string, T>();
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await this.fetchPage(cursor);
      const items = Array.isArray(result[key]) ? result[key] as unknown[] : [];
      for (const item of items) {
        const name = isRecord(item) ? item[nameField] : undefined;
        if (typeof name === "string" && !out.has(name)) out.set(name, item as T);
      }
      if (typeof result.nextCursor !== "string" || result.nextCursor === "") break;
      cursor = result.nextCursor;
    }
    return out;
  }
}
