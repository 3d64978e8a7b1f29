import assert from "node:assert/strict";
import { AccessCache, type AccessEntry } from "../../../lib/oauth/access-cache.ts";

const entry = (expiresAt: number): AccessEntry => ({
  grantId: "g",
  clientId: "c",
  userId: 1,
  login: "octo",
  scope: "mcp",
  resource: "https://proxy.example.com",
  expiresAt,
});

Deno.test("access cache: an entry is served until it expires, then dropped", () => {
  const cache = new AccessCache();
  cache.set("h", entry(100));
  assert.equal(cache.get("h", 99)?.expiresAt, 100);
  assert.equal(cache.get("h", 100), undefined, "expired at its expiry time");
  cache.set("h2", entry(100));
  assert.equal(cache.get("h2", 150), undefined);
  assert.equal(cache.get("h2", 50), undefined, "an expired entry is gone, not hidden");
});

Deno.test("access cache: bounded, the oldest entry goes first; clear forgets everything", () => {
  const cache = new AccessCache(3);
  for (const h of ["a", "b", "c", "d"]) cache.set(h, entry(1000));
  assert.equal(cache.get("a", 0), undefined, "the oldest was evicted");
  for (const h of ["b", "c", "d"]) assert.ok(cache.get(h, 0), h);
  cache.clear();
  for (const h of ["b", "c", "d"]) assert.equal(cache.get(h, 0), undefined, h);
});

Deno.test("access cache: a check that read the store before a clear is not cached", () => {
  const cache = new AccessCache();
  const before = cache.generation;
  // A revocation (here or announced by another instance) clears while the lookup runs.
  cache.clear();
  cache.set("h", entry(1000), before);
  assert.equal(cache.get("h", 0), undefined);
  cache.set("h", entry(1000), cache.generation);
  assert.ok(cache.get("h", 0));
});
