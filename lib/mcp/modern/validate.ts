/**
 * Validation of one sessionless (2026-07-28) POST: the JSON-RPC shape, the per-request `_meta`
 * envelope, and the standard request headers that mirror the body. Pure: it returns the request
 * to serve or the rejection to send, every rejection echoing the request id when it is readable.
 *
 * Order (the first failing check answers): message shape → envelope (-32602) → header/body
 * version and method mismatches (-32020) → unsupported version (-32022) → missing or mismatched
 * standard headers (-32020).
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#server-validation
 */
import {
  classify,
  ErrorCode,
  isRecord,
  isValidId,
  type JsonRpcId,
  logRank,
} from "../../jsonrpc.ts";
import { META, MODERN_VERSION, ModernError, nameField, SUPPORTED_VERSIONS } from "./protocol.ts";

/** A client's capabilities as declared on one request (`io.modelcontextprotocol/clientCapabilities`). */
export type ClientCapabilities = Record<string, unknown>;

/** A validated sessionless request. */
export interface ModernRequest {
  kind: "request";
  id: JsonRpcId;
  method: string;
  params: Record<string, unknown>;
  capabilities: ClientCapabilities;
  /** The rank of `io.modelcontextprotocol/logLevel`, or null when the request did not opt in. */
  logLevel: number | null;
  clientName: string;
}

/** A notification POST; the transport accepts it with 202. */
export interface ModernNotification {
  kind: "notification";
  method: string;
  params: Record<string, unknown>;
}

/** An HTTP rejection carrying a JSON-RPC error. */
export interface Rejection {
  kind: "rejection";
  status: number;
  id: JsonRpcId | null;
  code: number;
  message: string;
  data?: unknown;
}

export type Validated = ModernRequest | ModernNotification | Rejection;

/** Reads a request header by (case-insensitive) name. */
export type HeaderLookup = (name: string) => string | null;

export function reject(
  status: number,
  id: JsonRpcId | null,
  code: number,
  message: string,
  data?: unknown,
): Rejection {
  return data === undefined
    ? { kind: "rejection", status, id, code, message }
    : { kind: "rejection", status, id, code, message, data };
}

/** The -32022 rejection listing what the endpoint serves (basic/versioning). */
export function unsupportedVersion(id: JsonRpcId | null, requested: string): Rejection {
  const hint = SUPPORTED_VERSIONS.includes(requested)
    ? `; ${requested} is served with an initialize handshake, per-request _meta needs ${MODERN_VERSION}`
    : "";
  return reject(
    400,
    id,
    ModernError.UnsupportedProtocolVersion,
    `unsupported protocol version: ${requested}${hint}`,
    { supported: [...SUPPORTED_VERSIONS], requested },
  );
}

/**
 * Validates one sessionless POST body against its headers
 * (basic/index "_meta"; basic/transports/streamable-http "Request Metadata").
 */
export function validate(body: unknown, header: HeaderLookup): Validated {
  if (Array.isArray(body)) {
    return reject(
      400,
      null,
      ErrorCode.InvalidRequest,
      `JSON-RPC batches are not part of ${MODERN_VERSION}`,
    );
  }
  const kind = classify(body);
  const message = body as Record<string, unknown>;
  if (kind === "invalid") {
    const id = isRecord(body) && isValidId(body.id) ? body.id : null;
    return reject(400, id, ErrorCode.InvalidRequest, "invalid JSON-RPC 2.0 message");
  }
  if (kind === "response") {
    return reject(
      400,
      null,
      ErrorCode.InvalidRequest,
      `clients send no responses in ${MODERN_VERSION}`,
    );
  }
  const method = message.method as string;
  const params = isRecord(message.params) ? message.params : {};
  if (kind === "notification") return notification(method, params, header);
  return request(message.id as JsonRpcId, method, params, header);
}

function notification(
  method: string,
  params: Record<string, unknown>,
  header: HeaderLookup,
): ModernNotification | Rejection {
  const meta = isRecord(params._meta) ? params._meta : {};
  const version = meta[META.protocolVersion];
  const headerVersion = trimmed(header("mcp-protocol-version"));
  if (typeof version === "string" && headerVersion !== null && headerVersion !== version) {
    return mismatch(null, "MCP-Protocol-Version", headerVersion, version);
  }
  const methodHeader = trimmed(header("mcp-method"));
  if (methodHeader !== null && methodHeader !== method) {
    return mismatch(null, "Mcp-Method", methodHeader, method);
  }
  return { kind: "notification", method, params };
}

function request(
  id: JsonRpcId,
  method: string,
  params: Record<string, unknown>,
  header: HeaderLookup,
): ModernRequest | Rejection {
  const headerVersion = trimmed(header("mcp-protocol-version"));
  const envelope = checkEnvelope(id, params);
  if (envelope.kind === "rejection") {
    // No per-request version at all, and a header naming one nobody serves: say what is served.
    const claimed = isRecord(params._meta) && META.protocolVersion in params._meta;
    if (!claimed && headerVersion !== null && headerVersion !== MODERN_VERSION) {
      return unsupportedVersion(id, headerVersion);
    }
    return envelope;
  }
  const { version } = envelope;
  if (headerVersion !== null && headerVersion !== version) {
    return mismatch(id, "MCP-Protocol-Version", headerVersion, version);
  }
  const methodHeader = trimmed(header("mcp-method"));
  if (methodHeader !== null && methodHeader !== method) {
    return mismatch(id, "Mcp-Method", methodHeader, method);
  }
  if (version !== MODERN_VERSION) return unsupportedVersion(id, version);
  if (headerVersion === null) return missingHeader(id, "MCP-Protocol-Version");
  if (methodHeader === null) return missingHeader(id, "Mcp-Method");
  const named = checkName(id, method, params, header);
  if (named) return named;
  return {
    kind: "request",
    id,
    method,
    params,
    capabilities: envelope.capabilities,
    logLevel: envelope.logLevel,
    clientName: envelope.clientName,
  };
}

interface Envelope {
  kind: "envelope";
  version: string;
  capabilities: ClientCapabilities;
  logLevel: number | null;
  clientName: string;
}

/** The required and optional per-request `_meta` fields; a malformed one is -32602 / 400. */
function checkEnvelope(id: JsonRpcId, params: Record<string, unknown>): Envelope | Rejection {
  const meta = params._meta;
  const invalid = (what: string) =>
    reject(400, id, ErrorCode.InvalidParams, `invalid params: ${what}`, { field: `_meta` });
  if (!isRecord(meta)) return invalid("_meta with the per-request protocol fields is required");
  const version = meta[META.protocolVersion];
  if (typeof version !== "string" || version === "") {
    return invalid(`_meta["${META.protocolVersion}"] must be a protocol version string`);
  }
  const capabilities = meta[META.clientCapabilities];
  if (!isRecord(capabilities)) {
    return invalid(`_meta["${META.clientCapabilities}"] must be an object`);
  }
  const info = meta[META.clientInfo];
  if (info !== undefined && (!isRecord(info) || typeof info.name !== "string")) {
    return invalid(`_meta["${META.clientInfo}"] must be an object with a name`);
  }
  const level = meta[META.logLevel];
  if (level !== undefined && logRank(level) < 0) {
    return invalid(`_meta["${META.logLevel}"] must be an MCP log level`);
  }
  return {
    kind: "envelope",
    version,
    capabilities,
    logLevel: level === undefined ? null : logRank(level),
    clientName: isRecord(info) ? String(info.name).slice(0, 100) : "unknown",
  };
}

/** `Mcp-Name` must be present and match `params.name` / `params.uri` after decoding. */
function checkName(
  id: JsonRpcId,
  method: string,
  params: Record<string, unknown>,
  header: HeaderLookup,
): Rejection | null {
  const field = nameField(method);
  if (!field || typeof params[field] !== "string") return null;
  const body = params[field] as string;
  const raw = trimmed(header("mcp-name"));
  if (raw === null) return missingHeader(id, "Mcp-Name");
  const decoded = decodeHeaderValue(raw);
  if (decoded === null) {
    return reject(
      400,
      id,
      ModernError.HeaderMismatch,
      "header mismatch: Mcp-Name carries invalid Base64",
    );
  }
  return decoded === body ? null : mismatch(id, "Mcp-Name", decoded, body);
}

const SENTINEL_PREFIX = "=?base64?";
const SENTINEL_SUFFIX = "?=";
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes a header value that may use the `=?base64?…?=` form (UTF-8, canonical padding);
 * null when the form is used with an invalid payload
 * (basic/transports/streamable-http, "Value Encoding").
 */
export function decodeHeaderValue(value: string): string | null {
  if (!value.startsWith(SENTINEL_PREFIX) || !value.endsWith(SENTINEL_SUFFIX)) return value;
  if (value.length < SENTINEL_PREFIX.length + SENTINEL_SUFFIX.length) return null;
  const b64 = value.slice(SENTINEL_PREFIX.length, value.length - SENTINEL_SUFFIX.length);
  if (!CANONICAL_BASE64.test(b64)) return null;
  try {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** A field value without the optional whitespace around it (RFC 9110 §5.5). */
function trimmed(value: string | null): string | null {
  return value === null ? null : value.replace(/^[ \t]+|[ \t]+$/g, "");
}

function mismatch(id: JsonRpcId | null, name: string, header: string, body: string): Rejection {
  return reject(
    400,
    id,
    ModernError.HeaderMismatch,
    `header mismatch: ${name} header value '${header}' does not match body value '${body}'`,
  );
}

function missingHeader(id: JsonRpcId, name: string): Rejection {
  return reject(
    400,
    id,
    ModernError.HeaderMismatch,
    `header mismatch: the ${name} header is required`,
  );
}
