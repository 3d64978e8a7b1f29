/**
 * Facts of the sessionless protocol revision (MCP 2026-07-28) the proxy serves next to the
 * 2025-era revisions: its version, the reserved `_meta` keys, its error codes and the methods it
 * removed. https://modelcontextprotocol.io/specification/2026-07-28/basic
 */
import { STREAMABLE_VERSIONS } from "../../jsonrpc.ts";

/** The sessionless revision served on `/mcp/<name>` next to the 2025-era ones. */
export const MODERN_VERSION = "2026-07-28";
/** Every version the endpoint serves, newest first (`server/discover`, -32022 `supported`). */
export const SUPPORTED_VERSIONS: readonly string[] = [MODERN_VERSION, ...STREAMABLE_VERSIONS];

/** Reserved `_meta` keys (basic/index, "Per-request protocol fields"). */
export const META = {
  protocolVersion: "io.modelcontextprotocol/protocolVersion",
  clientInfo: "io.modelcontextprotocol/clientInfo",
  clientCapabilities: "io.modelcontextprotocol/clientCapabilities",
  logLevel: "io.modelcontextprotocol/logLevel",
  serverInfo: "io.modelcontextprotocol/serverInfo",
  subscriptionId: "io.modelcontextprotocol/subscriptionId",
} as const;

/**
 * The `_meta` key a child may put on a server-to-client request to name the key it gets among
 * an `InputRequiredResult`'s `inputRequests` (a vendor prefix, so not reserved by MCP); without
 * it the proxy assigns `input-<n>`.
 */
export const INPUT_KEY_META = "mcp-oauth-proxy/inputKey";

/** The per-request keys that mean something only to the proxy; never forwarded to a child. */
export const ENVELOPE_KEYS: readonly string[] = [
  META.protocolVersion,
  META.clientInfo,
  META.clientCapabilities,
  META.logLevel,
];

/** Error codes the revision defines (basic/index, "Error Codes"). */
export const ModernError = {
  HeaderMismatch: -32020,
  MissingRequiredClientCapability: -32021,
  UnsupportedProtocolVersion: -32022,
  /** Resource not found in 2025-11-25 and earlier; replaced by -32602. */
  LegacyResourceNotFound: -32002,
} as const;

/** Methods the revision removed; a modern request for one answers 404 / -32601. */
export const REMOVED_METHODS: ReadonlySet<string> = new Set([
  "initialize",
  "ping",
  "logging/setLevel",
  "resources/subscribe",
  "resources/unsubscribe",
]);

/** The client-to-server requests the revision defines (schema, `ClientRequest`). */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  "server/discover",
  "subscriptions/listen",
  "tools/list",
  "tools/call",
  "prompts/list",
  "prompts/get",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "completion/complete",
]);

/**
 * The server capability a method needs; a child that did not declare it has no such method
 * (server/index: capabilities gate the features).
 */
export function capabilityOf(method: string): string | null {
  const slash = method.indexOf("/");
  const family = slash < 0 ? method : method.slice(0, slash);
  switch (family) {
    case "tools":
    case "prompts":
    case "resources":
      return family;
    case "completion":
      return "completions";
    default:
      return null;
  }
}

/** Results that carry `ttlMs` and `cacheScope` (server/utilities/caching, `CacheableResult`). */
export const CACHEABLE_METHODS: ReadonlySet<string> = new Set([
  "tools/list",
  "prompts/list",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "server/discover",
]);

/** Requests that may answer with an `InputRequiredResult` (basic/patterns/mrtr, "Supported"). */
export const MRTR_METHODS: ReadonlySet<string> = new Set([
  "tools/call",
  "prompts/get",
  "resources/read",
]);

/**
 * The body field the `Mcp-Name` header mirrors for a method (basic/transports/streamable-http,
 * "Standard Request Headers"), or null when the method has none.
 */
export function nameField(method: string): "name" | "uri" | null {
  switch (method) {
    case "tools/call":
    case "prompts/get":
      return "name";
    case "resources/read":
      return "uri";
    default:
      return null;
  }
}
