/**
 * Turns a 2025-era child's answers into the sessionless revision's shape: `resultType` on every
 * result, the server's identity in each result's `_meta`, caching hints on cacheable results,
 * the fields the revision deleted removed, the resource-not-found code renumbered, and the HTTP
 * status each error needs. Also `server/discover`, answered from the child's InitializeResult.
 * https://modelcontextprotocol.io/specification/2026-07-28/changelog
 */
import type { InitializeResult } from "../../children/lifecycle.ts";
import { ErrorCode, isRecord } from "../../jsonrpc.ts";
import {
  CACHEABLE_METHODS,
  KNOWN_METHODS,
  META,
  ModernError,
  SUPPORTED_VERSIONS,
} from "./protocol.ts";

/** Capabilities whose `listChanged` / `subscribe` bits promise change notifications. */
const CHANGE_NOTIFYING = new Set(["tools", "prompts", "resources"]);
/** The server capabilities of the 2026-07-28 schema (`ServerCapabilities`). */
const MODERN_CAPABILITIES = [
  "tools",
  "prompts",
  "resources",
  "completions",
  "logging",
  "experimental",
  "extensions",
];

/** What every translated result carries besides the child's own fields. */
export interface ResultShape {
  serverInfo: Record<string, unknown>;
  /** Freshness hint for cacheable results (server/utilities/caching). */
  ttlMs: number;
  /** "private" when the answer can differ per user. */
  cacheScope: "public" | "private";
}

/**
 * A child's result in the 2026-07-28 shape (basic/index "ResultType"; server/utilities/caching;
 * basic/index "Per-response protocol fields"), set on `result` in place: the caller owns it
 * (just parsed from the child's line, or just built), so nothing is copied.
 */
export function stamp(
  result: Record<string, unknown>,
  method: string,
  shape: ResultShape,
): Record<string, unknown> {
  result.resultType = "complete";
  if (method === "tools/list" && Array.isArray(result.tools)) {
    result.tools = result.tools.map(withoutExecution);
  }
  if (CACHEABLE_METHODS.has(method)) {
    result.ttlMs = shape.ttlMs;
    result.cacheScope = shape.cacheScope;
  }
  result._meta = metaWith(result._meta, shape.serverInfo);
  return result;
}

/** Stamps `_meta["io.modelcontextprotocol/serverInfo"]`, keeping the rest of `_meta`. */
export function withServerInfo(
  result: Record<string, unknown>,
  serverInfo: Record<string, unknown>,
): Record<string, unknown> {
  return { ...result, _meta: metaWith(result._meta, serverInfo) };
}

/** `_meta` with the serverInfo entry set, the rest kept (a new object: `meta` may be shared). */
function metaWith(meta: unknown, serverInfo: unknown): Record<string, unknown> {
  return isRecord(meta)
    ? { ...meta, [META.serverInfo]: serverInfo }
    : { [META.serverInfo]: serverInfo };
}

/** The 2025-11-25 task-augmentation field `execution` is not part of the 2026 Tool. */
function withoutExecution(tool: unknown): unknown {
  if (!isRecord(tool) || !("execution" in tool)) return tool;
  const { execution: _execution, ...rest } = tool;
  return rest;
}

/**
 * A child's JSON-RPC error for a sessionless client: resource-not-found -32002 becomes -32602
 * with the URI in `data` (server/resources "Error Handling").
 */
export function modernError(
  method: string,
  error: Record<string, unknown>,
  params: Record<string, unknown>,
): Record<string, unknown> {
  if (error.code !== ModernError.LegacyResourceNotFound) return error;
  const data = isRecord(error.data) ? { ...error.data } : {};
  if (method === "resources/read" && data.uri === undefined && typeof params.uri === "string") {
    data.uri = params.uri;
  }
  return { ...error, code: ErrorCode.InvalidParams, data };
}

/**
 * The HTTP status of a response carrying a JSON-RPC error produced while serving `method`: 400
 * for -32021, 404 when the child does not implement a method outside the revision's own set,
 * 200 otherwise (the error is the payload) (basic/index "Per-request protocol fields";
 * streamable-http "Protocol Version Header").
 */
export function statusOf(code: unknown, method: string): number {
  if (code === ModernError.MissingRequiredClientCapability) return 400;
  if (code === ErrorCode.MethodNotFound && !KNOWN_METHODS.has(method)) return 404;
  return 200;
}

/**
 * The child's capabilities in the 2026 vocabulary: what it declared, without the 2025-only
 * `tasks`, and without change notifications unless `subscriptions/listen` delivers them
 * (basic/versioning; server/index).
 */
export function modernCapabilities(
  capabilities: Record<string, unknown>,
  listen: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of MODERN_CAPABILITIES) {
    const value = capabilities[key];
    if (!isRecord(value)) continue;
    if (listen || !CHANGE_NOTIFYING.has(key)) {
      out[key] = value;
      continue;
    }
    const { listChanged: _listChanged, subscribe: _subscribe, ...rest } = value;
    out[key] = rest;
  }
  return out;
}

/**
 * The `server/discover` result for a child: supported versions of both eras, capabilities,
 * instructions, and the child's identity in `_meta` (basic/versioning; server/discover).
 */
export function discoverResult(
  init: Pick<InitializeResult, "capabilities" | "serverInfo" | "instructions">,
  shape: ResultShape,
  listen: boolean,
): Record<string, unknown> {
  const result: Record<string, unknown> = {
    supportedVersions: [...SUPPORTED_VERSIONS],
    capabilities: modernCapabilities(init.capabilities, listen),
  };
  if (typeof init.instructions === "string") result.instructions = init.instructions;
  return stamp(result, "server/discover", shape);
}
