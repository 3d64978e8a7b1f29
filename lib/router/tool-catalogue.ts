/**
 * The tools one child offers: its `tools/list`, every page, fetched when first needed and kept
 * until the child says its list changed (`notifications/tools/list_changed`) or a new child
 * takes its place. Concurrent askers share one fetch.
 * https://modelcontextprotocol.io/specification/2025-06-18/server/tools#listing-tools
 */
import { ListCatalogue, type ListPage } from "./catalogue.ts";

/** One tool as the child lists it (schema `Tool`): a name, its input schema, the rest as sent. */
export interface ToolDefinition {
  name: string;
  inputSchema?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The tool list of one child, by tool name. */
export class ToolCatalogue extends ListCatalogue<ToolDefinition> {
  constructor(fetchPage: ListPage) {
    super({ key: "tools", nameField: "name" }, fetchPage);
  }

  /**
   * Every tool, by name: the kept list, or a fresh `tools/list` (pagination followed).
   * A failed fetch is not kept: the next caller tries again.
   */
  tools(): Promise<ReadonlyMap<string, ToolDefinition>> {
    return this.all();
  }

  /** One tool's definition, or undefined when the child does not list it. */
  tool(name: string): Promise<ToolDefinition | undefined> {
    return this.get(name);
  }
}
