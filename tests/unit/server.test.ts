/** The route table in process: Host check, health visibility, and the access log. */
import assert from "node:assert/strict";
import { createHandler } from "../../lib/server.ts";
import { Router } from "../../lib/router/router.ts";
import { McpService } from "../../lib/mcp/service.ts";
import { DEFAULT_LIMITS, SERVER_DEFAULTS } from "../../lib/config/schema.ts";
import { demoConfig } from "../../lib/config/load.ts";
import { silentLogger } from "../../lib/log.ts";
import { Edge } from "../../lib/edge/edge.ts";
import type { AccessEntry } from "../../lib/edge/access-log.ts";
import { Metrics } from "../../lib/metrics.ts";

function app(access: AccessEntry[] = []) {
  const config = demoConfig();
  config.servers = [{ ...config.servers[0], ...SERVER_DEFAULTS, name: "demo", mode: "per-user" }];
  // The proxy sits behind a tunnel daemon on this machine, which says who the client is.
  config.network = { ...config.network, trustedProxies: ["127.0.0.1/32"] };
  const router = new Router({
    servers: config.servers,
    limits: DEFAULT_LIMITS,
    log: silentLogger,
    version: "t",
  });
  const mcp = new McpService(router, DEFAULT_LIMITS, silentLogger);
  const edge = new Edge(config, { log: silentLogger });
  edge.listening(["127.0.0.1:8080"]);
  return createHandler({
    config,
    router,
    mcp,
    log: silentLogger,
    edge,
    metrics: new Metrics(),
    access: (e) => access.push(e),
    allowedOrigins: new Set(),
    authenticate: () => ({ key: "anonymous" }),
  });
}

const get = (path: string, headers: Record<string, string> = {}) =>
  new Request(`http://127.0.0.1:8080${path}`, { headers: { host: "127.0.0.1:8080", ...headers } });

Deno.test("the public listener serves no owner endpoint: /healthz says only ok, /metrics is 404, to loopback callers too", async () => {
  const handle = app();
  const callers: [string, Record<string, string>][] = [
    ...["203.0.113.5", "10.0.0.1", "::ffff:192.168.1.2", "2001:db8::1"].map((
      ip,
    ): [string, Record<string, string>] => ["127.0.0.1", { "x-forwarded-for": ip }]),
    // The trusted tunnel daemon without a header, with garbage, or claiming to be local.
    ["127.0.0.1", {}],
    ["::1", { "x-forwarded-for": "junk" }],
    ["::ffff:127.0.0.1", { "x-forwarded-for": "127.0.0.1" }],
  ];
  for (const [peer, headers] of callers) {
    const what = `${peer} ${JSON.stringify(headers)}`;
    const health = await handle(get("/healthz", headers), peer);
    assert.deepEqual(await health.json(), { status: "ok" }, what);
    const metrics = await handle(get("/metrics", headers), peer);
    assert.equal(metrics.status, 404, what);
    assert.deepEqual(await metrics.json(), { error: "not_found" }, what);
  }
});

Deno.test("a Host that is not ours is refused with 421 (DNS rebinding)", async () => {
  const handle = app();
  for (const host of ["evil.example:8080", "127.0.0.1:9999", "localhost"]) {
    const res = await handle(get("/healthz", { host }), "127.0.0.1");
    assert.equal(res.status, 421, host);
    await res.body?.cancel();
  }
  assert.equal((await handle(get("/healthz"), "127.0.0.1")).status, 200);
});

Deno.test("the access log has one JSON entry per request with the route class, not the path", async () => {
  const entries: AccessEntry[] = [];
  const handle = app(entries);
  await (await handle(
    get("/healthz?token=secret-in-query", { "x-forwarded-for": "198.51.100.7" }),
    "127.0.0.1",
  ))
    .body?.cancel();
  await (await handle(get("/no/such/path"), "127.0.0.1")).body?.cancel();
  assert.equal(entries.length, 2);
  assert.equal(entries[0].route, "health");
  assert.equal(entries[0].ip, "198.51.100.7");
  assert.equal(entries[0].peer, "127.0.0.1");
  assert.equal(entries[0].status, 200);
  assert.equal(entries[1].route, "none");
  assert.equal(entries[1].status, 404);
  assert.ok(!JSON.stringify(entries).includes("secret-in-query"));
});
