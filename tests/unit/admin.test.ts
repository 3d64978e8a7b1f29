/** The owner's listener in process: its routes, its Host check, and the `admin` config section. */
import assert from "node:assert/strict";
import { createAdminHandler } from "../../lib/admin.ts";
import { Router } from "../../lib/router/router.ts";
import { McpService } from "../../lib/mcp/service.ts";
import { DEFAULT_LIMITS, SERVER_DEFAULTS } from "../../lib/config/schema.ts";
import { ConfigError } from "../../lib/config/check.ts";
import { demoConfig, parseConfigText } from "../../lib/config/load.ts";
import { derivePermissions } from "../../lib/permissions/derive.ts";
import { silentLogger } from "../../lib/log.ts";
import { Edge } from "../../lib/edge/edge.ts";
import { Metrics } from "../../lib/metrics.ts";

function handler() {
  const config = demoConfig();
  config.servers = [{ ...config.servers[0], ...SERVER_DEFAULTS, name: "demo", mode: "per-user" }];
  const router = new Router({
    servers: config.servers,
    limits: DEFAULT_LIMITS,
    log: silentLogger,
    version: "t",
  });
  const metrics = new Metrics();
  metrics.requests.inc({ route: "mcp", status: 200 });
  return createAdminHandler({
    servers: config.servers,
    router,
    mcp: new McpService(router, DEFAULT_LIMITS, silentLogger),
    edge: new Edge(config, { log: silentLogger }),
    metrics,
  }, new Set(["127.0.0.1:8081", "localhost:8081", "[::1]:8081"]));
}

const get = (path: string, host = "127.0.0.1:8081", method = "GET") =>
  new Request(`http://127.0.0.1:8081${path}`, { method, headers: { host } });

Deno.test("admin listener: /healthz with details, /metrics in the Prometheus text format, nothing else", async () => {
  const handle = handler();
  const health = await handle(get("/healthz", "localhost:8081")).json();
  assert.equal(health.status, "ok");
  assert.equal(health.servers.demo.state, "idle");
  assert.equal(health.network.enabled, false);
  const metrics = handle(get("/metrics", "[::1]:8081"));
  assert.match(metrics.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  assert.equal(metrics.headers.get("cache-control"), "no-store");
  const body = await metrics.text();
  assert.match(body, /^mop_http_requests_total\{route="mcp",status="200"\} 1$/m);
  assert.match(body, /^mop_sessions_active\{server="demo"\} 0$/m);
  for (const path of ["/", "/mcp/demo", "/metrics/x", "/register"]) {
    const res = handle(get(path));
    assert.equal(res.status, 404, path);
    assert.deepEqual(await res.json(), { error: "not_found" });
  }
  const post = handle(get("/metrics", "127.0.0.1:8081", "POST"));
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET");
  await post.body?.cancel();
});

Deno.test("admin listener: a Host other than its own address is refused (DNS rebinding)", async () => {
  const handle = handler();
  for (const host of ["evil.example", "evil.example:8081", "127.0.0.1:8080", "pi.example.ts.net"]) {
    const res = handle(get("/metrics", host));
    assert.equal(res.status, 421, host);
    await res.body?.cancel();
  }
});

const SOURCE = "/srv/mop/config.json";
const servers = { files: { command: "npx" } };

function load(extra: Record<string, unknown>) {
  return parseConfigText(JSON.stringify({ mcpServers: servers, ...extra }), {
    source: SOURCE,
    env: () => undefined,
  });
}

function problems(extra: Record<string, unknown>): string[] {
  try {
    load(extra);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("admin.listen: defaults to the listen port + 1 on 127.0.0.1 (0 stays 0); loopback only", () => {
  assert.deepEqual(load({}).config.admin.listen, { hostname: "127.0.0.1", port: 8081 });
  assert.deepEqual(load({ listen: "[::1]:9000" }).config.admin.listen, {
    hostname: "127.0.0.1",
    port: 9001,
  });
  assert.deepEqual(load({ listen: "127.0.0.1:0" }).config.admin.listen.port, 0);
  for (const listen of ["127.0.0.1:9090", "[::1]:9090", "localhost:0", "127.0.0.2:9090"]) {
    const parsed = load({ admin: { listen } }).config.admin.listen;
    assert.equal(parsed.port, Number(listen.split(":").at(-1)), listen);
  }
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ admin: { listen: "0.0.0.0:9090" } }, /^admin\.listen: "0\.0\.0\.0" is not a loopback/],
    [{ admin: { listen: "192.168.1.5:9090" } }, /^admin\.listen: "192\.168\.1\.5" is not a/],
    [{ admin: { listen: "[::]:9090" } }, /^admin\.listen: "::" is not a loopback address/],
    [{ admin: { listen: "9090" } }, /^admin\.listen: expected "HOST:PORT"/],
    [{ admin: { listen: "127.0.0.1:8080" } }, /^admin\.listen: port 8080 is the public listen/],
    [{ listen: "127.0.0.1:65535" }, /^admin\.listen: the default .* is beyond 65535/],
    [{ admin: { lisen: "127.0.0.1:1" } }, /^admin\.lisen: unknown key \(did you mean "listen"\?\)/],
    [{ admin: "127.0.0.1:9090" }, /^admin: expected an object, got a string$/],
  ];
  for (const [extra, expected] of cases) {
    const found = problems(extra);
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(found[0], expected);
  }
});

Deno.test("admin.listen is in --allow-net (the host alone when its port is chosen at start)", () => {
  const net = (extra: Record<string, unknown>) =>
    derivePermissions(load(extra), SOURCE).find((f) => f.startsWith("--allow-net="));
  assert.equal(net({}), "--allow-net=127.0.0.1:8080,127.0.0.1:8081");
  assert.equal(net({ admin: { listen: "[::1]:9090" } }), "--allow-net=127.0.0.1:8080,[::1]:9090");
  assert.equal(net({ listen: "127.0.0.1:0" }), "--allow-net=127.0.0.1");
});
