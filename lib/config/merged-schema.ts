/**
 * The `merged` section: one endpoint, `/mcp`, serving every server the caller may use, with
 * tools and prompts named `<server><separator><name>`.
 */
import { boolean, type Checker, type JsonObject, knownKeys, object, string } from "./check.ts";

export interface MergedSettings {
  enabled: boolean;
  /** Between the server's name and the item's in exposed tool and prompt names. */
  separator: string;
}

/**
 * The name the merged endpoint goes by where a server's name would appear (sessions, logs):
 * outside the server-name alphabet, so no configured server can take it.
 */
export const MERGED_SERVER = "(merged)";

export const MERGED_KEYS = ["enabled", "separator"] as const;
export const MERGED_DEFAULTS: MergedSettings = { enabled: false, separator: "__" };
/** Characters every client accepts in a tool name, so the separator keeps names valid. */
const SEPARATOR = /^[A-Za-z0-9_-]{1,4}$/;

/** Reads `merged` (absent: off). */
export function parseMerged(ck: Checker, root: JsonObject): MergedSettings {
  if (root.merged === undefined) return MERGED_DEFAULTS;
  const section = object(ck, root.merged, "merged") ?? {};
  knownKeys(ck, section, "merged", MERGED_KEYS);
  const enabled = boolean(ck, section, "enabled", "merged") ?? true;
  const separator = string(ck, section, "separator", "merged", {
    pattern: SEPARATOR,
    patternHint: "use 1 to 4 of the characters A-Z a-z 0-9 _ - (clients accept only those in " +
      "tool names)",
  }) ?? MERGED_DEFAULTS.separator;
  return { enabled, separator };
}

/**
 * Every MCP endpoint's name and path, as printed by `serve`, `check` and `init`: a server's
 * `/mcp/<name>`, then the merged `/mcp` (named `MERGED_SERVER`) when it is served.
 */
export function endpointPaths(
  config: { servers: readonly { name: string }[]; merged?: MergedSettings },
): { name: string; path: string }[] {
  const out = config.servers.map((s) => ({ name: s.name, path: `/mcp/${s.name}` }));
  if (config.merged?.enabled) out.push({ name: MERGED_SERVER, path: "/mcp" });
  return out;
}
