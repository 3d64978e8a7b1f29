/** requestState: sealed, bound to the principal, the server, the request and an expiry. */
import assert from "node:assert/strict";
import { canonical, paramsDigest, StateSealer } from "../../../lib/mcp/modern/state.ts";
import { randomBytes } from "../../../lib/crypto.ts";

/** Claims that expire a minute after the test starts (not after this module loads). */
const claims = () => ({
  sub: "github:1",
  cid: "client-a",
  server: "fx",
  method: "tools/call",
  digest: "d1",
  handle: "h",
  round: 1,
  exp: Date.now() + 60_000,
});
const EXPECTED = {
  sub: "github:1",
  cid: "client-a",
  server: "fx",
  method: "tools/call",
  digest: "d1",
};

Deno.test("state: a sealed state opens for the same principal and request", async () => {
  const sealer = await StateSealer.ephemeral();
  const CLAIMS = claims();
  const state = await sealer.seal(CLAIMS);
  assert.ok(!state.includes("github"), "the claims are encrypted");
  assert.deepEqual(await sealer.open(state, EXPECTED), CLAIMS);
});

Deno.test("state: tampered, truncated, foreign-key, expired, other principal, other request", async () => {
  const secret = randomBytes(32);
  const sealer = await StateSealer.fromSecret(secret);
  const CLAIMS = claims();
  const state = await sealer.seal(CLAIMS);
  assert.equal(await sealer.open(`${state}-TAMPERED`, EXPECTED), "invalid");
  assert.equal(await sealer.open(state.slice(0, -4), EXPECTED), "invalid");
  assert.equal(await sealer.open("garbage", EXPECTED), "invalid");
  assert.equal(await (await StateSealer.ephemeral()).open(state, EXPECTED), "invalid");
  // The same secret (a key kept in the store) opens it after a restart.
  assert.deepEqual(await (await StateSealer.fromSecret(secret)).open(state, EXPECTED), CLAIMS);
  assert.equal(await sealer.open(state, EXPECTED, CLAIMS.exp), "expired");
  assert.equal(await sealer.open(state, { ...EXPECTED, sub: "github:2" }), "principal");
  assert.equal(await sealer.open(state, { ...EXPECTED, cid: "client-b" }), "principal");
  assert.equal(await sealer.open(state, { ...EXPECTED, digest: "d2" }), "request");
  assert.equal(await sealer.open(state, { ...EXPECTED, server: "other" }), "request");
  assert.equal(await sealer.open(state, { ...EXPECTED, method: "prompts/get" }), "request");
});

Deno.test("paramsDigest: the retry's own fields and _meta do not count, key order neither", async () => {
  const a = await paramsDigest({ name: "t", arguments: { x: 1, y: [1, { b: 2, a: 1 }] } });
  const b = await paramsDigest({
    arguments: { y: [1, { a: 1, b: 2 }], x: 1 },
    name: "t",
    inputResponses: { k: {} },
    requestState: "s",
    _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28" },
  });
  assert.equal(a, b);
  assert.notEqual(a, await paramsDigest({ name: "t", arguments: { x: 2 } }));
  assert.equal(canonical({ b: 1, a: [true, null] }), '{"a":[true,null],"b":1}');
});
