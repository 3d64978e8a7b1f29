/** A 2025-era child's answers in the 2026-07-28 shape, and server/discover. */
import assert from "node:assert/strict";
import {
  discoverResult,
  modernCapabilities,
  modernError,
  stamp,
  statusOf,
} from "../../../lib/mcp/modern/translate.ts";

const SHAPE = {
  serverInfo: { name: "child", version: "1" },
  ttlMs: 5,
  cacheScope: "private" as const,
};
const INFO = "io.modelcontextprotocol/serverInfo";

Deno.test("stamp: resultType, serverInfo, caching hints only where cacheable", () => {
  const childMeta = { keep: 1 };
  const listed = stamp(
    {
      tools: [{ name: "a", inputSchema: {}, execution: { taskSupport: "optional" } }],
      _meta: childMeta,
    },
    "tools/list",
    SHAPE,
  );
  assert.equal(listed.resultType, "complete");
  assert.equal(listed.ttlMs, 5);
  assert.equal(listed.cacheScope, "private");
  assert.deepEqual(listed.tools, [{ name: "a", inputSchema: {} }]);
  assert.deepEqual(listed._meta, { keep: 1, [INFO]: SHAPE.serverInfo });
  assert.deepEqual(childMeta, { keep: 1 }, "the child's _meta object is not written to");
  const called = stamp({ content: [] }, "tools/call", SHAPE);
  assert.equal(called.ttlMs, undefined);
  assert.equal(called.resultType, "complete");
  for (
    const m of ["prompts/list", "resources/list", "resources/templates/list", "resources/read"]
  ) {
    assert.equal(stamp({}, m, SHAPE).cacheScope, "private", m);
  }
});

Deno.test("modernError: -32002 becomes -32602 with the URI", () => {
  const params = { uri: "test://missing" };
  assert.deepEqual(modernError("resources/read", { code: -32002, message: "nope" }, params), {
    code: -32602,
    message: "nope",
    data: { uri: "test://missing" },
  });
  const other = { code: -32603, message: "x" };
  assert.equal(modernError("resources/read", other, params), other);
});

Deno.test("statusOf: -32021 is 400, an unknown method 404, everything else in-band", () => {
  assert.equal(statusOf(-32021, "tools/call"), 400);
  assert.equal(statusOf(-32601, "vendor/thing"), 404);
  assert.equal(statusOf(-32601, "tools/call"), 200);
  assert.equal(statusOf(-32602, "resources/read"), 200);
});

Deno.test("modernCapabilities: the 2026 vocabulary, change bits only with listen", () => {
  const child = {
    tools: { listChanged: true },
    resources: { subscribe: true, listChanged: true },
    prompts: {},
    logging: {},
    completions: {},
    tasks: { list: {} },
  };
  assert.deepEqual(modernCapabilities(child, false), {
    tools: {},
    resources: {},
    prompts: {},
    logging: {},
    completions: {},
  });
  assert.deepEqual(modernCapabilities(child, true).resources, {
    subscribe: true,
    listChanged: true,
  });
  assert.equal(modernCapabilities(child, true).tasks, undefined);
});

Deno.test("discoverResult: both eras, instructions, identity in _meta, cacheable", () => {
  const r = discoverResult(
    {
      capabilities: { tools: {} },
      serverInfo: { name: "child", version: "1" },
      instructions: "hi",
    },
    SHAPE,
    false,
  );
  assert.deepEqual(r.supportedVersions, ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"]);
  assert.equal(r.instructions, "hi");
  assert.equal(r.resultType, "complete");
  assert.equal(r.ttlMs, 5);
  assert.deepEqual((r._meta as Record<string, unknown>)[INFO], SHAPE.serverInfo);
});
