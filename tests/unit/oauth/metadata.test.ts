import assert from "node:assert/strict";
import {
  authorizationServerMetadata,
  canonicalResource,
  challenge,
  protectedResourceMetadata,
  resourceMetadataUrl,
} from "../../../lib/oauth/metadata.ts";
import { parseConfigText } from "../../../lib/config/load.ts";
import { SERVICE_ORIGIN, withService } from "../../helpers/oauth-service.ts";

function auth(publicUrl: string) {
  const text = JSON.stringify({
    publicUrl,
    github: { clientId: "Ov23liTestClient01", clientSecret: "s3cret-for-tests" },
    allow: { users: [1] },
    mcpServers: { fx: { command: "deno" } },
  });
  return parseConfigText(text, { source: "/tmp/config.json", env: () => undefined }).config.auth!;
}

Deno.test("canonicalResource: case, default port, trailing slash; anything odd is refused", () => {
  const same: [string, string][] = [
    ["HTTPS://Proxy.Example.COM/mcp/fx", "https://proxy.example.com/mcp/fx"],
    ["https://proxy.example.com:443/mcp/fx/", "https://proxy.example.com/mcp/fx"],
    ["https://proxy.example.com/", "https://proxy.example.com"],
    ["https://proxy.example.com", "https://proxy.example.com"],
    ["http://127.0.0.1:8080/mcp/fx//", "http://127.0.0.1:8080/mcp/fx"],
    ["https://proxy.example.com/mcp/fx?x=1", "https://proxy.example.com/mcp/fx?x=1"],
  ];
  for (const [given, canonical] of same) assert.equal(canonicalResource(given), canonical, given);
  const refused = [
    "https://proxy.example.com/mcp/fx#frag",
    "https://proxy.example.com/mcp/f x",
    "https://proxy.example.com/mcp/fx\t",
    "https://proxy.example.com/mcp/\nfx",
    "https://user:pw@proxy.example.com/mcp/fx",
    "ftp://proxy.example.com/mcp/fx",
    "/mcp/fx",
    "",
  ];
  for (const given of refused) assert.equal(canonicalResource(given), null, JSON.stringify(given));
});

Deno.test("audience: the origin, or one server by its /mcp or /sse URL (both give /mcp)", async () => {
  await withService([], (svc) => {
    const mcp = `${SERVICE_ORIGIN}/mcp/fx`;
    assert.equal(svc.audience(null), SERVICE_ORIGIN);
    assert.equal(svc.audience(`${SERVICE_ORIGIN}/`), SERVICE_ORIGIN);
    assert.equal(svc.audience(mcp), mcp);
    assert.equal(svc.audience(`${SERVICE_ORIGIN}/sse/fx`), mcp);
    assert.equal(svc.audience("HTTPS://PROXY.example.com:443/mcp/fx/"), mcp);
    assert.equal(svc.audience(`${SERVICE_ORIGIN}/mcp/other`), null);
    assert.equal(svc.audience(`${SERVICE_ORIGIN}/mcp`), null);
    assert.equal(svc.audience("https://elsewhere.example/mcp/fx"), null);
  });
});

Deno.test("resourceMetadataUrl: the well-known path goes before the resource's path (RFC 9728 §3.1)", () => {
  const based = auth("https://proxy.example.com/base");
  assert.equal(
    resourceMetadataUrl(based, "fx"),
    "https://proxy.example.com/.well-known/oauth-protected-resource/base/mcp/fx",
  );
  assert.equal(
    resourceMetadataUrl(based, "fx", "sse"),
    "https://proxy.example.com/.well-known/oauth-protected-resource/base/sse/fx",
  );
  assert.equal(
    resourceMetadataUrl(based, null),
    "https://proxy.example.com/.well-known/oauth-protected-resource/base",
  );
  // Its `resource` is the URL the well-known URL was built from (RFC 9728 §3.3).
  assert.equal(
    protectedResourceMetadata(based, "fx", "sse").resource,
    "https://proxy.example.com/base/sse/fx",
  );
  assert.equal(protectedResourceMetadata(based, null).resource, "https://proxy.example.com/base");
  assert.equal(authorizationServerMetadata(based).issuer, "https://proxy.example.com/base");
});

Deno.test("challenge: no error without a token; an error's description cannot break the quoting", () => {
  const a = auth(SERVICE_ORIGIN);
  const prm = `${SERVICE_ORIGIN}/.well-known/oauth-protected-resource/mcp/fx`;
  assert.equal(challenge(a, "fx", "mcp"), `Bearer resource_metadata="${prm}", scope="mcp"`);
  assert.equal(
    challenge(a, "fx", "mcp", { code: "invalid_token", description: `bad "token" \\ here` }),
    `Bearer error="invalid_token", error_description="bad token  here", resource_metadata="${prm}", scope="mcp"`,
  );
  assert.match(challenge(a, "fx", "sse"), /oauth-protected-resource\/sse\/fx"/);
});
