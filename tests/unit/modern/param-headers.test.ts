/** `x-mcp-header` annotations and the check of `Mcp-Param-*` headers against the arguments. */
import assert from "node:assert/strict";
import { checkParamHeaders, headerParams } from "../../../lib/mcp/modern/param-headers.ts";

const SCHEMA = {
  type: "object",
  properties: {
    region: { type: "string", "x-mcp-header": "Region" },
    limit: { type: "integer", "x-mcp-header": "Limit" },
    verbose: { type: "boolean", "x-mcp-header": "Verbose" },
    target: {
      type: "object",
      properties: { zone: { type: "string", "x-mcp-header": "Zone" } },
    },
    query: { type: "string" },
  },
};

const lookup = (headers: Record<string, string>) => (name: string) => {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name.toLowerCase()) return v;
  }
  return null;
};

function check(args: unknown, headers: Record<string, string>) {
  return checkParamHeaders(5, headerParams(SCHEMA)!, args, lookup(headers));
}

Deno.test("param headers: annotations reachable through properties, nested ones included", () => {
  assert.deepEqual(headerParams(SCHEMA), [
    { path: ["region"], name: "Region" },
    { path: ["limit"], name: "Limit" },
    { path: ["verbose"], name: "Verbose" },
    { path: ["target", "zone"], name: "Zone" },
  ]);
  assert.deepEqual(headerParams({ type: "object" }), []);
  assert.deepEqual(headerParams(undefined), []);
  // Data keywords are not schemas.
  assert.deepEqual(headerParams({ type: "object", default: { "x-mcp-header": "X" } }), []);
});

Deno.test("param headers: an invalid annotation invalidates the tool's annotations", () => {
  const prop = (schema: Record<string, unknown>) => ({ type: "object", properties: { p: schema } });
  for (
    const bad of [
      prop({ type: "string", "x-mcp-header": "" }),
      prop({ type: "string", "x-mcp-header": "has space" }),
      prop({ type: "string", "x-mcp-header": "a:b" }),
      prop({ type: "string", "x-mcp-header": "é" }),
      prop({ type: "number", "x-mcp-header": "N" }),
      prop({ type: "object", "x-mcp-header": "O" }),
      prop({ "x-mcp-header": "Untyped" }),
      prop({ type: "array", items: { type: "string", "x-mcp-header": "Item" } }),
      prop({ oneOf: [{ type: "string", "x-mcp-header": "One" }] }),
      {
        type: "object",
        properties: {
          a: { type: "string", "x-mcp-header": "Dup" },
          b: { type: "string", "x-mcp-header": "dup" },
        },
      },
      { type: "string", "x-mcp-header": "Root" },
    ]
  ) {
    assert.equal(headerParams(bad), null, JSON.stringify(bad));
  }
});

Deno.test("param headers: values that match, plain and Base64, pass", () => {
  assert.equal(check({ region: "us-west1" }, { "Mcp-Param-Region": "us-west1" }), null);
  assert.equal(check({ region: "Hello" }, { "mcp-param-region": "=?base64?SGVsbG8=?=" }), null);
  // Without the whole sentinel the value is literal.
  assert.equal(check({ region: "SGVsbG8=" }, { "Mcp-Param-Region": "SGVsbG8=" }), null);
  assert.equal(
    check({ region: "=?base64?SGVsbG8=" }, { "Mcp-Param-Region": "=?base64?SGVsbG8=" }),
    null,
  );
  assert.equal(check({ region: "" }, { "Mcp-Param-Region": "" }), null);
  assert.equal(check({ limit: 42 }, { "Mcp-Param-Limit": "42.0" }), null);
  assert.equal(check({ verbose: false }, { "Mcp-Param-Verbose": "false" }), null);
  assert.equal(check({ target: { zone: "z1" } }, { "Mcp-Param-Zone": "z1" }), null);
  // Absent or null in the body: no header expected.
  assert.equal(check({ region: null, query: "q" }, {}), null);
  assert.equal(check(undefined, {}), null);
});

Deno.test("param headers: missing, mismatched or malformed headers are 400 / -32020", () => {
  const refused = (args: unknown, headers: Record<string, string>, why: RegExp) => {
    const r = check(args, headers);
    assert.ok(r, `accepted ${JSON.stringify([args, headers])}`);
    assert.deepEqual([r.status, r.code, r.id], [400, -32020, 5]);
    assert.match(r.message, why);
  };
  refused({ region: "test-value" }, {}, /Mcp-Param-Region header is required/);
  refused({ region: "a" }, { "Mcp-Param-Region": "b" }, /does not match/);
  refused({ region: "Hello" }, { "Mcp-Param-Region": "=?base64?SGVsbG8?=" }, /invalid Base64/);
  refused({ region: "Hello" }, { "Mcp-Param-Region": "=?base64?SGVs!!!bG8=?=" }, /Base64/);
  refused({ region: "é" }, { "Mcp-Param-Region": "\u00e9" }, /invalid characters/);
  refused({ limit: 42 }, { "Mcp-Param-Limit": "42abc" }, /does not match/);
  refused({ verbose: true }, { "Mcp-Param-Verbose": "TRUE" }, /does not match/);
  refused({ target: { zone: "z1" } }, {}, /Mcp-Param-Zone/);
  refused({}, { "Mcp-Param-Region": "stray" }, /does not match/);
});
