/** The shared client-name cleaner used for registered (DCR) and metadata-document (CIMD) names. */
import assert from "node:assert/strict";
import { cleanClientName, MAX_CLIENT_NAME_LENGTH } from "../../../lib/oauth/client-name.ts";

Deno.test("cleanClientName: bidi overrides, isolates and zero-width characters become spaces", () => {
  assert.equal(cleanClientName("Claude\u202e\u200b (official)"), "Claude (official)");
  assert.equal(cleanClientName("a\u2066b\u2069c\u200dd\ufeffe\u00adf"), "a b c d e f");
  assert.equal(cleanClientName("  Evil\u202e Corp\u0000\n  Tool  "), "Evil Corp Tool");
  assert.equal(cleanClientName("line\u2028para\u2029end"), "line para end");
  assert.equal(cleanClientName("\u202e\u200b\t"), "");
});

Deno.test("cleanClientName: letters of every script stay; the length is capped in characters", () => {
  assert.equal(cleanClientName("Ünïcödé 名前 🚀"), "Ünïcödé 名前 🚀");
  assert.equal(cleanClientName("é".repeat(500)), "é".repeat(MAX_CLIENT_NAME_LENGTH));
  assert.equal(Array.from(cleanClientName("🚀".repeat(300))).length, MAX_CLIENT_NAME_LENGTH);
});
