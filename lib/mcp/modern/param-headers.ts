/**
 * `Mcp-Param-{Name}` headers: a tool's input schema may mark parameters with `x-mcp-header`, and
 * a client then mirrors each such argument into `Mcp-Param-{Name}`; a server that reads the body
 * checks every mirrored value against it. Pure: the annotations of a schema, and the check of one
 * `tools/call`'s headers against its arguments, by the child's tool list.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#custom-headers-from-tool-parameters
 */
import { isRecord, type JsonRpcId } from "../../jsonrpc.ts";
import type { ToolDefinition } from "../../router/tool-catalogue.ts";
import { ModernError } from "./protocol.ts";
import { decodeHeaderValue, type HeaderLookup, reject, type Rejection } from "./validate.ts";

/** One annotated parameter: where its value sits in the arguments, and its header's name part. */
export interface HeaderParam {
  path: string[];
  name: string;
}

const ANNOTATION = "x-mcp-header";
/** RFC 9110 §5.1 field-name token (`1*tchar`). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PRIMITIVE_TYPES = new Set(["string", "integer", "boolean"]);
/** Keywords whose values are instance data, not schemas: never searched for annotations. */
const DATA_KEYWORDS = new Set(["const", "enum", "default", "examples"]);
/** RFC 9110 §5.5 field value characters: visible ASCII, space and tab. */
const FIELD_VALUE = /^[\x20-\x7E\t]*$/;

/**
 * The `x-mcp-header` annotations of an input schema; null when any of them is invalid (empty,
 * not a token, duplicated ignoring case, on a non-primitive parameter, or not reachable from the
 * root through `properties` alone), which makes the whole tool definition invalid
 * (streamable-http "Schema Extension"): clients drop such a tool, so nothing is checked for it.
 */
export function headerParams(inputSchema: unknown): HeaderParam[] | null {
  const found: HeaderParam[] = [];
  let valid = true;
  const walk = (node: unknown, path: string[] | null): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item, null);
      return;
    }
    if (!isRecord(node)) return;
    if (ANNOTATION in node) {
      const name = node[ANNOTATION];
      if (path === null || path.length === 0 || !annotatable(node, name)) valid = false;
      else found.push({ path, name: name as string });
    }
    for (const [key, value] of Object.entries(node)) {
      if (DATA_KEYWORDS.has(key)) continue;
      if (key === "properties" && isRecord(value) && path !== null) {
        for (const [property, schema] of Object.entries(value)) walk(schema, [...path, property]);
      } else walk(value, null);
    }
  };
  walk(inputSchema, []);
  const names = new Set(found.map((p) => p.name.toLowerCase()));
  if (names.size !== found.length) valid = false;
  return valid ? found : null;
}

function annotatable(schema: Record<string, unknown>, name: unknown): boolean {
  return typeof name === "string" && TOKEN.test(name) && typeof schema.type === "string" &&
    PRIMITIVE_TYPES.has(schema.type);
}

/**
 * Checks a `tools/call`'s `Mcp-Param-*` headers against its arguments (streamable-http "Server
 * Behavior for Custom Headers"): a value present in the body needs its header; a header must be
 * valid field characters, decode when in the `=?base64?…?=` form, and equal the body value
 * (integers compared as numbers); a header for a value the body lacks does not match either.
 * Every failure is 400 with -32020.
 */
export function checkParamHeaders(
  id: JsonRpcId,
  params: HeaderParam[],
  args: unknown,
  header: HeaderLookup,
): Rejection | null {
  for (const param of params) {
    const headerName = `Mcp-Param-${param.name}`;
    const value = valueAt(args, param.path);
    const raw = header(headerName);
    if (raw === null) {
      if (value === undefined || value === null) continue;
      return failed(id, `the ${headerName} header is required: the arguments carry its value`);
    }
    if (!FIELD_VALUE.test(raw)) return failed(id, `${headerName} carries invalid characters`);
    const decoded = decodeHeaderValue(raw.replace(/^[ \t]+|[ \t]+$/g, ""));
    if (decoded === null) return failed(id, `${headerName} carries invalid Base64`);
    if (!matches(decoded, value)) {
      return failed(
        id,
        `${headerName} header value '${decoded.slice(0, 200)}' does not match the argument ${
          param.path.join(".")
        }`,
      );
    }
  }
  return null;
}

/** The instance value at a chain of property names, undefined when any step is missing. */
function valueAt(args: unknown, path: string[]): unknown {
  let node = args;
  for (const key of path) {
    if (!isRecord(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

/** A decoded header value against the body value it mirrors (streamable-http "Value Encoding"). */
function matches(decoded: string, value: unknown): boolean {
  switch (typeof value) {
    case "string":
      return decoded === value;
    case "boolean":
      return decoded === String(value);
    case "number":
      // Integers compare numerically: "42.0" mirrors 42 (streamable-http "Server Validation").
      return /^[+-]?\d+(\.\d+)?$/.test(decoded) && Number(decoded) === value;
    default:
      return false;
  }
}

function failed(id: JsonRpcId, why: string): Rejection {
  return reject(400, id, ModernError.HeaderMismatch, `header mismatch: ${why}`);
}

/** The `x-mcp-header` annotations of each tool definition a child listed (null: invalid). */
const annotations = new WeakMap<ToolDefinition, HeaderParam[] | null>();

/** The tools of a child as the check needs them (the router's kept `tools/list`). */
export interface ToolSchemas {
  readonly known: ReadonlyMap<string, ToolDefinition> | null;
  tool(name: string): Promise<ToolDefinition | undefined>;
}

/**
 * A request's `Mcp-Param-*` headers checked by the annotations of the input schema its
 * `tools/call` names in the child's `tools/list`; other methods pass. A tool the child does not
 * list, or a list the child cannot give, is checked by nothing here: the call then gets the
 * child's own answer. Answers at once while the list is kept; waits for it otherwise.
 */
export function checkToolHeaders(
  tools: ToolSchemas,
  request: { id: JsonRpcId; method: string; params: Record<string, unknown> },
  header: HeaderLookup,
): Rejection | null | Promise<Rejection | null> {
  const name = request.params.name;
  if (request.method !== "tools/call" || typeof name !== "string") return null;
  const check = (tool: ToolDefinition | undefined) => {
    if (!tool) return null;
    let params = annotations.get(tool);
    if (params === undefined) annotations.set(tool, params = headerParams(tool.inputSchema));
    if (!params || params.length === 0) return null;
    return checkParamHeaders(request.id, params, request.params.arguments, header);
  };
  if (tools.known) return check(tools.known.get(name));
  return tools.tool(name).then(check, () => null);
}
