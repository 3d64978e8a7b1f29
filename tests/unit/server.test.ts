/** The route table in process: health details only for loopback peers. */
import assert from "node:assert/strict";
import { createHandler, isLoopbackAddress } from "../../lib/server.ts";
import { Router } from "../../lib/router/router.ts";
import { McpService } from "../../lib/mcp/service.ts";
import { DEFAULT_LIMITS, SERVER_DEFAULTS } from "../../lib/config/schema.ts";
import { demoConfig } from "../../lib/config/load.ts";
import { silentLogger } from "../../lib/log.ts";

function app() {
  const config = demoConfig();
  config.servers = [{ ...config.servers[0], ...SERVER_DEFAULTS, name: "demo", mode: "per-user" }];
  const router = new Router({
    servers: config.servers,
    limits: DEFAULT_LIMITS,
    log: silentLogger,
    version: "t",
  });
  const mcp = new McpService(router, DEFAULT_LIMITS, silentLogger);
  return createHandler({
    config,
    router,
    mcp,
    log: silentLogger,
    allowedOrigins: new Set(),
    authenticate: () => ({ key: "anonymous" }),
  });
}

Deno.test("/healthz shows server state to loopback peers only", async () => {
  const handle = app();
  for (const peer of ["203.0.113.5", "10.0.0.1", "::ffff:192.168.1.2", "2001:db8::1"]) {
    const res = await handle(new Request("http://x/healthz"), { peer });
    assert.deepEqual(await res.json(), { status: "ok" }, peer);
  }
  for (const peer of ["127.0.0.1", "::1", "::ffff:127.0.0.1"]) {
    const body = await (await handle(new Request("http://x/healthz"), { peer })).json();
    assert.equal(body.status, "ok");
    assert.equal(body.servers.demo.mode, "per-user");
    assert.equal(body.servers.demo.state, "idle");
  }
});

Deno.test("loopback detection", () => {
  for (const a of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "::ffff:127.0.0.1"]) {
    assert.ok(isLoopbackAddress(a), a);
  }
  for (const a of ["128.0.0.1", "::2", "0.0.0.0", "::ffff:10.0.0.1", "localhost"]) {
    assert.ok(!isLoopbackAddress(a), a);
  }
});
