/**
 * The way from the 2025-era transport into the sessionless lane (MCP 2026-07-28): which requests
 * take it, and its handler (./handler.ts and what it imports), loaded on the first such request
 * so that a proxy whose clients never speak 2026-07-28 does not carry it in memory.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/versioning
 */
import { LEGACY_VERSIONS } from "../../jsonrpc.ts";
import { lazyImport } from "../../lazy.ts";
import type { McpCall } from "../http.ts";
import type { McpService } from "../service.ts";
import { MODERN_VERSION } from "./protocol.ts";

/**
 * Whether a request's `MCP-Protocol-Version` header selects the sessionless lane: 2026-07-28,
 * or any version the 2025-era transports do not know on a request outside a 2025 session
 * (basic/versioning "Backward Compatibility"; a 2026 request's `Mcp-Session-Id` is ignored).
 */
export function wantsModern(req: Request): boolean {
  const version = req.headers.get("mcp-protocol-version");
  if (version === null || LEGACY_VERSIONS.includes(version as never)) return false;
  return version === MODERN_VERSION || !req.headers.has("mcp-session-id");
}

const handler = lazyImport("the MCP 2026-07-28 lane", () => import("./handler.ts"));

/**
 * Serves one request of the sessionless lane (see `handleModern` in ./handler.ts), loading the
 * lane on the first one; `body` is the parsed body when the 2025 lane already read it.
 */
export async function serveModern(
  svc: McpService,
  call: McpCall,
  body?: { value: unknown },
): Promise<Response> {
  const { handleModern } = await handler();
  return await handleModern(svc, call, body);
}
