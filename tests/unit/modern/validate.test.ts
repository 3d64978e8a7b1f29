/** The sessionless request checks: order, codes, HTTP status, and the echoed id. */
import assert from "node:assert/strict";
import { decodeHeaderValue, validate } from "../../../lib/mcp/modern/validate.ts";

const V = "2026-07-28";
const META = {
  "io.modelcontextprotocol/protocolVersion": V,
  "io.modelcontextprotocol/clientCapabilities": { sampling: {} },
};

function headers(extra: Record<string, string | null> = {}) {
  const all: Record<string, string | null> = {
    "mcp-protocol-version": V,
    "mcp-method": "tools/call",
    "mcp-name": "echo",
    ...extra,
  };
  return (name: string) => all[name] ?? null;
}

function body(params: Record<string, unknown> = { name: "echo", _meta: META }, id: unknown = 7) {
  return { jsonrpc: "2.0", id, method: "tools/call", params };
}

Deno.test("validate: a well-formed request", () => {
  const r = validate(body(), headers());
  assert.equal(r.kind, "request");
  if (r.kind !== "request") return;
  assert.equal(r.id, 7);
  assert.deepEqual(r.capabilities, { sampling: {} });
  assert.equal(r.logLevel, null);
  assert.equal(r.clientName, "unknown");
});

Deno.test("validate: the envelope comes first (-32602, 400)", () => {
  for (const meta of [undefined, {}, { "io.modelcontextprotocol/protocolVersion": V }]) {
    const r = validate(body({ name: "echo", _meta: meta }), headers({ "mcp-method": "x" }));
    assert.equal(r.kind, "rejection");
    if (r.kind !== "rejection") continue;
    assert.deepEqual([r.status, r.code, r.id], [400, -32602, 7]);
  }
  const badLevel = validate(
    body({ name: "echo", _meta: { ...META, "io.modelcontextprotocol/logLevel": "loud" } }),
    headers(),
  );
  assert.equal(badLevel.kind === "rejection" && badLevel.code, -32602);
});

Deno.test("validate: header/body disagreements are -32020 before the version check", () => {
  const meta = { ...META, "io.modelcontextprotocol/protocolVersion": "v9" };
  const r = validate(body({ name: "echo", _meta: meta }), headers());
  assert.equal(r.kind === "rejection" && r.code, -32020);
  const same = validate(
    body({ name: "echo", _meta: meta }),
    headers({ "mcp-protocol-version": "v9" }),
  );
  assert.equal(same.kind === "rejection" && same.code, -32022);
  if (same.kind === "rejection") {
    assert.deepEqual(same.data, {
      supported: ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"],
      requested: "v9",
    });
  }
  const method = validate(body(), headers({ "mcp-method": "TOOLS/CALL" }));
  assert.equal(method.kind === "rejection" && method.code, -32020);
});

Deno.test("validate: required standard headers", () => {
  for (const missing of ["mcp-protocol-version", "mcp-method", "mcp-name"]) {
    const r = validate(body(), headers({ [missing]: null }));
    assert.equal(r.kind === "rejection" && r.code, -32020, missing);
    assert.equal(r.kind === "rejection" && r.status, 400, missing);
  }
  // Mcp-Name mirrors params.name only for the methods that have one.
  const list = validate(
    { jsonrpc: "2.0", id: 1, method: "tools/list", params: { _meta: META } },
    headers({ "mcp-method": "tools/list", "mcp-name": null }),
  );
  assert.equal(list.kind, "request");
  const spaced = validate(body(), headers({ "mcp-name": "  echo \t" }));
  assert.equal(spaced.kind, "request");
  const wrong = validate(body(), headers({ "mcp-name": "other" }));
  assert.equal(wrong.kind === "rejection" && wrong.code, -32020);
});

Deno.test("validate: resources/read compares Mcp-Name with params.uri", () => {
  const uri = "file:///tmp/ü.txt";
  const msg = { jsonrpc: "2.0", id: 2, method: "resources/read", params: { uri, _meta: META } };
  const encoded = `=?base64?${btoa(String.fromCharCode(...new TextEncoder().encode(uri)))}?=`;
  const ok = validate(msg, headers({ "mcp-method": "resources/read", "mcp-name": encoded }));
  assert.equal(ok.kind, "request");
});

Deno.test("validate: shapes that are not a single request or notification", () => {
  const batch = validate([body()], headers());
  assert.equal(batch.kind === "rejection" && batch.code, -32600);
  const response = validate({ jsonrpc: "2.0", id: 1, result: {} }, headers());
  assert.equal(response.kind === "rejection" && response.code, -32600);
  const invalid = validate({ jsonrpc: "1.0", id: 5, method: "x" }, headers());
  assert.equal(invalid.kind === "rejection" && invalid.id, 5);
  const note = validate({ jsonrpc: "2.0", method: "notifications/cancelled" }, () => null);
  assert.equal(note.kind, "notification");
});

Deno.test("validate: no per-request version and a header nobody serves: -32022", () => {
  const r = validate(
    { jsonrpc: "2.0", id: 3, method: "tools/list" },
    headers({ "mcp-protocol-version": "2031-01-01", "mcp-method": "tools/list" }),
  );
  assert.equal(r.kind === "rejection" && r.code, -32022);
  assert.equal(r.kind === "rejection" && r.id, 3);
});

Deno.test("decodeHeaderValue: the Base64 sentinel form", () => {
  assert.equal(decodeHeaderValue("plain"), "plain");
  assert.equal(decodeHeaderValue("=?base64?SGVsbG8sIOS4lueVjA==?="), "Hello, 世界");
  assert.equal(decodeHeaderValue("=?base64?SGVsbG8?="), null); // not canonical padding
  assert.equal(decodeHeaderValue("=?base64?/w==?="), null); // not UTF-8
  assert.equal(decodeHeaderValue("=?base64??="), "");
});
