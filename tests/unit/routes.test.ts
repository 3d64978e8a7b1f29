/** matchRoute: one pure match per path, with and without a secret path. */
import assert from "node:assert/strict";
import { matchRoute } from "../../lib/routes.ts";

Deno.test("MCP paths name their server and the legacy messages endpoint", () => {
  assert.deepEqual(matchRoute("/mcp/fs", false, ""), {
    kind: "mcp",
    path: "/mcp/fs",
    server: "fs",
    messages: false,
  });
  assert.deepEqual(matchRoute("/sse/fs/messages", false, ""), {
    kind: "sse",
    path: "/sse/fs/messages",
    server: "fs",
    messages: true,
  });
  assert.equal(matchRoute("/mcp/fs/other", false, ""), null);
  assert.equal(matchRoute("/mcp/", false, ""), null);
  assert.equal(matchRoute("/constructor", false, ""), null);
});

Deno.test("the authorization server's paths are route classes of their own", () => {
  assert.deepEqual(matchRoute("/auth/callback", false, ""), {
    kind: "callback",
    path: "/auth/callback",
  });
  assert.deepEqual(matchRoute("/token", false, ""), { kind: "token", path: "/token" });
  assert.equal(matchRoute("/token/", false, ""), null);
});

Deno.test("a secret path prefixes every route; metadata inserts it after the well-known prefix", () => {
  const base = "/s3cret";
  assert.equal(matchRoute("/mcp/fs", false, base), null);
  assert.equal(matchRoute("/s3cret/mcp/fs", false, base)?.path, "/mcp/fs");
  assert.deepEqual(matchRoute("/.well-known/oauth-protected-resource/s3cret/mcp/fs", false, base), {
    kind: "metadata",
    path: "/.well-known/oauth-protected-resource/mcp/fs",
  });
  assert.equal(matchRoute("/.well-known/oauth-protected-resource/s3cretx", false, base), null);
  assert.deepEqual(matchRoute("/.well-known/oauth-authorization-server/s3cret", false, base), {
    kind: "metadata",
    path: "/.well-known/oauth-authorization-server",
  });
  assert.deepEqual(matchRoute("/s3cret/.well-known/openid-configuration", false, base), {
    kind: "metadata",
    path: "/.well-known/openid-configuration",
  });
  assert.equal(matchRoute("/.well-known/oauth-authorization-server", false, base), null);
});

Deno.test("/healthz beside a secret path answers callers on this machine only", () => {
  assert.deepEqual(matchRoute("/healthz", false, ""), { kind: "health", path: "/healthz" });
  assert.equal(matchRoute("/healthz", false, "/s3cret"), null);
  assert.deepEqual(matchRoute("/healthz", true, "/s3cret"), { kind: "health", path: "/healthz" });
  assert.deepEqual(matchRoute("/s3cret/healthz", false, "/s3cret"), {
    kind: "health",
    path: "/healthz",
  });
});
