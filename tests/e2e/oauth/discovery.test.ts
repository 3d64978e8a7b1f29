/**
 * Discovery (RFC 9728, RFC 8414;
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization): the 401 challenge
 * on every MCP endpoint, protected-resource metadata (path-inserted and root), authorization-server
 * metadata at the RFC 8414 and OpenID paths, CORS preflights, and JSON-only answers (never HTML,
 * never a redirect) on the machine-to-machine endpoints.
 */
import assert from "node:assert/strict";
import { fixtureServer, startProxy } from "../../helpers/proxy.ts";
import { fakeGitHub, LOGIN_ENV, loginConfig } from "../../helpers/oauth.ts";
import { readJson, RELAXED_LIMITS } from "../../helpers/oauth-raw.ts";

const INIT = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "discovery-test", version: "1.0.0" },
  },
};

Deno.test("discovery: challenges, protected-resource and authorization-server metadata", async (t) => {
  const gh = await fakeGitHub();
  const proxy = await startProxy(
    {
      mcpServers: { fx: fixtureServer(), fy: fixtureServer() },
      ...loginConfig(gh),
      allowedOrigins: ["http://localhost:6274"],
      limits: RELAXED_LIMITS,
    },
    { env: LOGIN_ENV },
  );
  const origin = proxy.origin;
  // Each endpoint's challenge names its own metadata: /mcp/<name> or the legacy /sse/<name>.
  const prm = (server: string, endpoint = "mcp") =>
    `${origin}/.well-known/oauth-protected-resource/${endpoint}/${server}`;
  const bare = (server: string, endpoint = "mcp") =>
    `Bearer resource_metadata="${prm(server, endpoint)}", scope="mcp"`;
  try {
    await t.step("the public URL is the loopback origin the proxy printed", () => {
      assert.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(proxy.url("fx"), `${origin}/mcp/fx`);
    });

    await t.step(
      "unauthenticated POST, GET, DELETE and legacy SSE get 401 with the challenge",
      async () => {
        const cases: [string, RequestInit][] = [
          [`${origin}/mcp/fx`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
            },
            body: JSON.stringify(INIT),
          }],
          [`${origin}/mcp/fx`, { method: "GET", headers: { accept: "text/event-stream" } }],
          [`${origin}/mcp/fx`, { method: "DELETE", headers: { "mcp-session-id": "abc" } }],
          [`${origin}/sse/fx`, { method: "GET", headers: { accept: "text/event-stream" } }],
          [`${origin}/sse/fx/messages?sessionId=abc`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(INIT),
          }],
          [`${origin}/mcp/fy`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(INIT),
          }],
        ];
        for (const [url, init] of cases) {
          const res = await fetch(url, { ...init, redirect: "manual" });
          await res.body?.cancel();
          const what = `${init.method} ${url}`;
          assert.equal(res.status, 401, what);
          const [, endpoint, server] = /\/(mcp|sse)\/([^/?]+)/.exec(url)!;
          // No token was sent: exactly the resource metadata URL and the scope, no error.
          assert.equal(res.headers.get("www-authenticate"), bare(server, endpoint), what);
          assert.equal(res.headers.get("mcp-session-id"), null, what);
        }
      },
    );

    await t.step('a malformed, unknown or foreign token gets error="invalid_token"', async () => {
      const tokens = [
        "Bearer not-a-token-we-issued",
        "Bearer mop_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a", // a GitHub token is never accepted
        "Bearer mop_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer",
        "Bearer a b",
      ];
      for (const authorization of tokens) {
        for (const [method, path] of [["POST", "/mcp/fx"], ["GET", "/sse/fx"]]) {
          const res = await fetch(`${origin}${path}`, {
            method,
            headers: {
              authorization,
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
            },
            body: method === "POST" ? JSON.stringify(INIT) : undefined,
          });
          await res.body?.cancel();
          const what = `${method} ${path} with ${authorization}`;
          assert.equal(res.status, 401, what);
          const header = res.headers.get("www-authenticate") ?? "";
          assert.match(header, /^Bearer /, what);
          assert.match(header, /(^Bearer |, )error="invalid_token"(,|$)/, what);
          const endpoint = path.split("/")[1];
          assert.ok(
            header.includes(`resource_metadata="${prm("fx", endpoint)}"`),
            `${what}: ${header}`,
          );
          assert.ok(header.includes(`scope="mcp"`), `${what}: ${header}`);
        }
      }
    });

    await t.step("a token in the query string is ignored: the challenge has no error", async () => {
      const res = await fetch(
        `${origin}/mcp/fx?access_token=mop_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(INIT),
        },
      );
      await res.body?.cancel();
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("www-authenticate"), bare("fx"));
    });

    await t.step("a browser client from an allowed Origin can read the 401 challenge", async () => {
      for (const allowed of ["http://localhost:6274", origin]) {
        const res = await fetch(`${origin}/mcp/fx`, {
          method: "POST",
          headers: { origin: allowed, "content-type": "application/json" },
          body: JSON.stringify(INIT),
        });
        await res.body?.cancel();
        assert.equal(res.status, 401, allowed);
        assert.equal(res.headers.get("www-authenticate"), bare("fx"));
        assert.equal(res.headers.get("access-control-allow-origin"), allowed);
        const exposed = (res.headers.get("access-control-expose-headers") ?? "").toLowerCase()
          .split(",").map((h) => h.trim());
        for (const h of ["www-authenticate", "mcp-session-id", "mcp-protocol-version"]) {
          assert.ok(exposed.includes(h), `${h} is exposed to ${allowed}`);
        }
      }
      // Any other Origin is refused before authentication, without CORS headers.
      const res = await fetch(`${origin}/mcp/fx`, {
        method: "POST",
        headers: { origin: "https://evil.example", "content-type": "application/json" },
        body: JSON.stringify(INIT),
      });
      await res.body?.cancel();
      assert.equal(res.status, 403);
      assert.equal(res.headers.get("access-control-allow-origin"), null);
    });

    await t.step("the challenge's resource_metadata URL serves the path-inserted PRM", async () => {
      const res = await fetch(`${origin}/mcp/fx`, { method: "GET" });
      await res.body?.cancel();
      const url = /resource_metadata="([^"]+)"/.exec(res.headers.get("www-authenticate")!)![1];
      const doc = await readJson(await fetch(url, { redirect: "manual" }));
      assert.equal(doc.status, 200);
      assert.equal(doc.body.resource, `${origin}/mcp/fx`);
    });

    await t.step(
      "PRM at the path-inserted URL: resource is the MCP URL, exactly (RFC 9728 §3.3)",
      async () => {
        for (const server of ["fx", "fy"]) {
          const doc = await readJson(await fetch(prm(server), { redirect: "manual" }));
          assert.equal(doc.status, 200);
          assert.deepEqual(doc.body, {
            resource: `${origin}/mcp/${server}`,
            authorization_servers: [origin],
            scopes_supported: ["mcp"],
            bearer_methods_supported: ["header"],
            resource_name: "mcp-oauth-proxy",
          });
          assert.equal(doc.headers.get("access-control-allow-origin"), "*");
          assert.ok(!doc.text.includes("offline_access"), "never offline_access in PRM");
        }
      },
    );

    await t.step("PRM at the root: resource is the origin", async () => {
      const doc = await readJson(
        await fetch(`${origin}/.well-known/oauth-protected-resource`, { redirect: "manual" }),
      );
      assert.equal(doc.status, 200);
      assert.deepEqual(doc.body, {
        resource: origin,
        authorization_servers: [origin],
        scopes_supported: ["mcp"],
        bearer_methods_supported: ["header"],
        resource_name: "mcp-oauth-proxy",
      });
      // Byte-identical origin, no trailing slash.
      assert.ok(doc.text.includes(`"resource":"${origin}"`), doc.text);
    });

    await t.step("PRM of an unknown server, or of a non-MCP path, is a JSON 404", async () => {
      for (
        const path of [
          "/.well-known/oauth-protected-resource/mcp/nope",
          "/.well-known/oauth-protected-resource/mcp",
          "/.well-known/oauth-protected-resource/mcp/",
          "/.well-known/oauth-protected-resource/mcp/fx/",
          "/.well-known/oauth-protected-resource/mcp/fx/extra",
          "/.well-known/oauth-protected-resource/sse/nope",
          "/.well-known/oauth-protected-resource/sse/fx/messages",
          "/.well-known/oauth-protected-resource/",
          "/.well-known/oauth-protected-resource/healthz",
        ]
      ) {
        const doc = await readJson(await fetch(`${origin}${path}`, { redirect: "manual" }));
        assert.equal(doc.status, 404, path);
      }
    });

    await t.step("AS metadata at the RFC 8414 path has every field the clients need", async () => {
      const doc = await readJson(
        await fetch(`${origin}/.well-known/oauth-authorization-server`, { redirect: "manual" }),
      );
      assert.equal(doc.status, 200);
      const m = doc.body;
      // issuer is byte-identical to publicUrl (no trailing slash).
      assert.equal(m.issuer, origin);
      assert.ok(doc.text.includes(`"issuer":"${origin}"`), doc.text);
      assert.equal(m.authorization_endpoint, `${origin}/authorize`);
      assert.equal(m.token_endpoint, `${origin}/token`);
      assert.equal(m.registration_endpoint, `${origin}/register`);
      assert.equal(m.revocation_endpoint, `${origin}/revoke`);
      assert.deepEqual(m.response_types_supported, ["code"]);
      assert.deepEqual(m.grant_types_supported, ["authorization_code", "refresh_token"]);
      assert.deepEqual(m.code_challenge_methods_supported, ["S256"]);
      const methods = ["none", "client_secret_post", "client_secret_basic"];
      assert.deepEqual([...m.token_endpoint_auth_methods_supported].sort(), [...methods].sort());
      assert.deepEqual(
        [...m.revocation_endpoint_auth_methods_supported].sort(),
        [...methods].sort(),
      );
      assert.deepEqual(m.scopes_supported, ["mcp", "offline_access"]);
      assert.equal(m.client_id_metadata_document_supported, true);
      assert.equal(m.authorization_response_iss_parameter_supported, true);
      // No OIDC claims: no ID tokens, no keys.
      for (
        const key of [
          "jwks_uri",
          "userinfo_endpoint",
          "id_token_signing_alg_values_supported",
          "subject_types_supported",
          "claims_supported",
          "end_session_endpoint",
        ]
      ) {
        assert.ok(!(key in m), `${key} must not be advertised`);
      }
      assert.ok(!m.response_types_supported.includes("id_token"));
      assert.ok(!m.scopes_supported.includes("openid"));
      if (m.response_modes_supported) assert.deepEqual(m.response_modes_supported, ["query"]);
      assert.equal(doc.headers.get("access-control-allow-origin"), "*");
    });

    await t.step("the OpenID path mirrors the same JSON", async () => {
      const a = await readJson(await fetch(`${origin}/.well-known/oauth-authorization-server`));
      const b = await readJson(await fetch(`${origin}/.well-known/openid-configuration`));
      assert.equal(b.status, 200);
      assert.deepEqual(b.body, a.body);
    });

    await t.step("the metadata endpoints listed in AS metadata exist at the root", async () => {
      const { body: m } = await readJson(
        await fetch(`${origin}/.well-known/oauth-authorization-server`),
      );
      for (const key of ["registration_endpoint", "token_endpoint", "revocation_endpoint"]) {
        // Reachable, JSON, and not a 404: an empty POST is a client error of that endpoint.
        const doc = await readJson(await fetch(m[key], { method: "POST", redirect: "manual" }));
        assert.ok(doc.status >= 400 && doc.status < 500 && doc.status !== 404, key);
        assert.equal(typeof doc.body.error, "string", key);
      }
    });

    await t.step(
      "CORS preflights allow Authorization, Content-Type and MCP-Protocol-Version",
      async () => {
        const paths: [string, string][] = [
          ["/.well-known/oauth-protected-resource/mcp/fx", "GET"],
          ["/.well-known/oauth-protected-resource", "GET"],
          ["/.well-known/oauth-authorization-server", "GET"],
          ["/.well-known/openid-configuration", "GET"],
          ["/register", "POST"],
          ["/token", "POST"],
          ["/revoke", "POST"],
        ];
        for (const [path, method] of paths) {
          const res = await fetch(`${origin}${path}`, {
            method: "OPTIONS",
            headers: {
              origin: "http://localhost:6274",
              "access-control-request-method": method,
              "access-control-request-headers": "authorization, content-type, mcp-protocol-version",
            },
          });
          await res.body?.cancel();
          assert.ok(res.status === 200 || res.status === 204, `${path}: ${res.status}`);
          const allowOrigin = res.headers.get("access-control-allow-origin");
          assert.ok(
            allowOrigin === "*" || allowOrigin === "http://localhost:6274",
            `${path}: allow-origin ${allowOrigin}`,
          );
          const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase()
            .split(",").map((h) => h.trim());
          for (const h of ["authorization", "content-type", "mcp-protocol-version"]) {
            assert.ok(allowed.includes(h), `${path}: ${h} not in ${allowed}`);
          }
          const methods = (res.headers.get("access-control-allow-methods") ?? "").split(",")
            .map((m) => m.trim());
          assert.ok(methods.includes(method), `${path}: ${method} not in ${methods}`);
        }
      },
    );

    await t.step("a browser's metadata GET with MCP-Protocol-Version gets CORS", async () => {
      const res = await fetch(`${origin}/.well-known/oauth-protected-resource/mcp/fx`, {
        headers: { origin: "http://localhost:6274", "mcp-protocol-version": "2025-06-18" },
      });
      const doc = await readJson(res);
      assert.equal(doc.status, 200);
      assert.equal(doc.headers.get("access-control-allow-origin"), "*");
    });

    await t.step(
      "metadata, register, token and revoke answer JSON only, never a redirect",
      async () => {
        const cases: [string, string, number][] = [
          // Wrong methods: 405 JSON.
          ["/.well-known/oauth-authorization-server", "POST", 405],
          ["/.well-known/openid-configuration", "DELETE", 405],
          ["/.well-known/oauth-protected-resource/mcp/fx", "PUT", 405],
          ["/register", "GET", 405],
          ["/token", "GET", 405],
          ["/revoke", "GET", 405],
          ["/register", "PUT", 405],
          // Trailing slashes and unknown well-known paths: 404 JSON, not a 307.
          ["/register/", "POST", 404],
          ["/token/", "POST", 404],
          ["/revoke/", "POST", 404],
          ["/.well-known/oauth-authorization-server/", "GET", 404],
          ["/.well-known/openid-configuration/", "GET", 404],
          ["/.well-known/oauth-authorization-server/mcp/fx", "GET", 404],
          ["/.well-known/unknown", "GET", 404],
          ["/.well-known/", "GET", 404],
          // Bad bodies: 400 JSON.
          ["/register", "POST", 400],
          ["/token", "POST", 400],
          ["/revoke", "POST", 400],
        ];
        for (const [path, method, status] of cases) {
          const res = await fetch(`${origin}${path}`, {
            method,
            redirect: "manual",
            headers: method === "POST" ? { "content-type": "text/html" } : {},
            body: method === "POST" || method === "PUT" ? "<html>" : undefined,
          });
          const doc = await readJson(res);
          assert.equal(doc.status, status, `${method} ${path}: ${doc.text}`);
          assert.equal(doc.headers.get("location"), null, `${method} ${path}`);
          assert.equal(typeof doc.body.error, "string", `${method} ${path}`);
          if (status === 405) assert.ok(doc.headers.get("allow"), `${method} ${path}: Allow`);
        }
      },
    );

    await t.step("OAuth JSON responses carry Cache-Control: no-store", async () => {
      const check = async (what: string, res: Response) => {
        const doc = await readJson(res);
        assert.equal(doc.headers.get("cache-control"), "no-store", `${what}: ${doc.status}`);
      };
      await check(
        "register 201",
        await fetch(`${origin}/register`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            redirect_uris: ["http://127.0.0.1:9/cb"],
            token_endpoint_auth_method: "none",
          }),
        }),
      );
      await check(
        "register 400",
        await fetch(`${origin}/register`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}",
        }),
      );
      await check(
        "token 400",
        await fetch(`${origin}/token`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "grant_type=authorization_code&code=x&client_id=nope",
        }),
      );
      await check(
        "revoke",
        await fetch(`${origin}/revoke`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "token=x&client_id=nope",
        }),
      );
      await check("token 405", await fetch(`${origin}/token`));
      await check(
        "metadata 405",
        await fetch(`${origin}/.well-known/oauth-authorization-server`, { method: "POST" }),
      );
      // The metadata documents themselves may be cached briefly, but never privately varied.
      const meta = await readJson(await fetch(`${origin}/.well-known/oauth-authorization-server`));
      assert.ok(meta.headers.get("cache-control"), "metadata states its cache policy");
    });

    await t.step("metadata ignores Host and X-Forwarded-* headers", async () => {
      const res = await fetch(`${origin}/.well-known/oauth-authorization-server`, {
        headers: {
          "x-forwarded-host": "evil.example",
          "x-forwarded-proto": "https",
          forwarded: "host=evil.example;proto=https",
        },
      });
      const doc = await readJson(res);
      assert.equal(doc.body.issuer, origin);
      assert.ok(!doc.text.includes("evil.example"));
      const prmDoc = await readJson(
        await fetch(prm("fx"), { headers: { "x-forwarded-host": "evil.example" } }),
      );
      assert.equal(prmDoc.body.resource, `${origin}/mcp/fx`);
      const challenge = await fetch(`${origin}/mcp/fx`, {
        headers: { "x-forwarded-host": "evil.example", "x-forwarded-proto": "https" },
      });
      await challenge.body?.cancel();
      assert.equal(challenge.headers.get("www-authenticate"), bare("fx"));
    });

    await t.step("no GitHub traffic happened during discovery", () => {
      assert.deepEqual(gh.requests.map((r) => r.path), []);
    });
  } finally {
    await proxy.stop();
    await gh.close();
  }
});
