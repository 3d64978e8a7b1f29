/**
 * The merged endpoint's listen stream, pure parts: a resource update's URI as its child sent it,
 * from the form the merged session gave it.
 */
import assert from "node:assert/strict";
import { childUri } from "../../lib/mcp/modern/merged-listen.ts";

Deno.test("merged listen: an update's child URI, from the prefixed form of its own server only", () => {
  assert.equal(childUri("a", "mcp-merged://a/test://x"), "test://x");
  assert.equal(childUri("a", "test://x"), "test://x");
  // Another server's prefix is not this server's: the URI is taken as the child sent it.
  assert.equal(childUri("a", "mcp-merged://b/test://x"), "mcp-merged://b/test://x");
  assert.equal(childUri("a", "mcp-merged://a/"), "mcp-merged://a/");
});
