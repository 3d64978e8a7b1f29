/**
 * The merged endpoint's stand-in server: what `/mcp` goes by where a server would appear (the
 * route table, sessions, logs). Small on purpose: the endpoint's own modules (this folder) are
 * loaded only when a merged session opens.
 */
import type { ServerConfig } from "../../config/schema.ts";
import { MERGED_SERVER } from "../../config/merged-schema.ts";

/** A ServerConfig-shaped stand-in for the merged endpoint (it has no child of its own). */
export function mergedServerConfig(): ServerConfig {
  return {
    name: MERGED_SERVER,
    command: "",
    args: [],
    env: {},
    mode: "per-user",
    idleTimeoutMs: 0,
    requestTimeoutMs: 0,
    maxInFlight: 0,
    restartDelayMs: 0,
    logArguments: false,
    warm: 0,
  };
}
