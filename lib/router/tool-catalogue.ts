/**
 * The tools one child offers: its `tools/list`, every page, fetched when first needed and kept
 * until the child says its list changed (`notifications/tools/list_changed`) or a new child
 * takes its place. Concurrent askers share one fetch.
 * https://modelcontextprotocol.io/specification/2025-06-18/server/tools#listing-tools
 */
import { isRecord } from "../jsonrpc.ts";

/** One tool as the child lists it (schema `Tool`): a name, its input schema, the rest as sent. */
export interface ToolDefinition {
  name: string;
  inputSchema?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Fetches one page of `tools/list` (the `result`); throws when the child answers an error. */
export type ToolListPage = (cursor: string | undefined) => Promise<Record<string, unknown>>;

/** Pages read at most, so a child whose cursor never ends cannot keep the proxy busy. */
export const MAX_PAGES = 50;

/** The tool list of one child, by tool name. */
export class ToolCatalogue {
  #tools: Promise<ReadonlyMap<string, ToolDefinition>> | null = null;

  constructor(private readonly fetchPage: ToolListPage) {}

  /**
   * Every tool, by name: the kept list, or a fresh `tools/list` (pagination followed:
   * https://modelcontextprotocol.io/specification/2025-06-18/server/utilities/pagination).
   * A failed fetch is not kept: the next caller tries again.
   */
  tools(): Promise<ReadonlyMap<string, ToolDefinition>> {
    if (this.#tools) return this.#tools;
    const loading = this.#load();
    this.#tools = loading;
    loading.catch(() => {
      if (this.#tools === loading) this.#tools = null;
    });
    return loading;
  }

  /** One tool's definition, or undefined when the child does not list it. */
  async tool(name: string): Promise<ToolDefinition | undefined> {
    return (await this.tools()).get(name);
  }

  /** Forgets the kept list (the child's list changed, or the child is another one now). */
  invalidate(): void {
    this.#tools = null;
  }

  async #load(): Promise<ReadonlyMap<string, ToolDefinition>> {
    const out = new Map<string, ToolDefinition>();
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await this.fetchPage(cursor);
      const tools = Array.isArray(result.tools) ? result.tools : [];
      for (const tool of tools) {
        if (isRecord(tool) && typeof tool.name === "string" && !out.has(tool.name)) {
          out.set(tool.name, tool as ToolDefinition);
        }
      }
      if (typeof result.nextCursor !== "string" || result.nextCursor === "") break;
      cursor = result.nextCursor;
    }
    return out;
  }
}
