/**
 * Requests that belong to another instance's memory: a 2025-era session (its `Mcp-Session-Id`,
 * or a legacy stream's `sessionId`) names the instance holding it. Such a request is forwarded
 * to that owner; when the owner is gone, the session is as unknown as any other: 404, and the
 * client starts a new session (MCP Transports § "Session Management", item 4).
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 */
import { ErrorCode, type JsonRpcId } from "../jsonrpc.ts";
import { type McpCall, rpcError } from "./http.ts";
import type { McpService } from "./service.ts";

/**
 * The owner's answer to a request for `sessionId` held by another instance, the 404 of a
 * session whose owner is gone, or null when the session is this instance's to look up.
 */
export async function servedElsewhere(
  svc: McpService,
  call: McpCall,
  sessionId: string | null,
  requestId: JsonRpcId | null = null,
): Promise<Response | null> {
  const instances = svc.instances;
  if (!instances || !call.forwardable || !sessionId) return null;
  const owner = await instances.ownerOf(sessionId);
  if (!owner) return null;
  call.note.instance = owner;
  const answer = await instances.forward(owner, call.req, call.forwardable);
  return answer ?? rpcError(404, requestId, ErrorCode.SessionNotFound, "session not found");
}
