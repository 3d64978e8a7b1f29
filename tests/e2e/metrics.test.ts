/**
 * /metrics (on the owner's loopback listener) counts what happened; every tool call leaves one
 * audit line.
 */
import assert from "node:assert/strict";
import { fixtureServer, startProxy } from "../helpers/proxy.ts";
import { text } from "../helpers/client.ts";
import { parseLogLine } from "../helpers/logs.ts";
import {
  connectWithLogin,
  fakeGitHub,
  LOGIN_ENV,
  loginConfig,
  MALLORY,
  TestProvider,
} from "../helpers/oauth.ts";

function metric(body: string, name: string, labels: string): number {
  const line = body.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(" ").at(-1)) : NaN;
}

Deno.test("metrics and audit: counts on the admin listener, never on the public one, no arguments by default", async () => {
  const gh = await fakeGitHub();
  const proxy = await startProxy({
    mcpServers: { fx: fixtureServer(), logged: fixtureServer({ logArguments: true }) },
    ...loginConfig(gh),
    network: { trustedProxies: ["127.0.0.1/32"] },
  }, { env: LOGIN_ENV });
  try {
    const provider = new TestProvider();
    const { client } = await connectWithLogin(proxy.url("fx"), provider);
    assert.equal(
      text(await client.callTool({ name: "echo", arguments: { text: "audit-marker-1" } })),
      "audit-marker-1",
    );
    const failed = await client.callTool({ name: "fail", arguments: {} });
    assert.equal(failed.isError, true);
    await client.close();
    const logged = await connectWithLogin(
      proxy.url("logged"),
      new TestProvider({ browser: provider.browser }),
    );
    await logged.client.callTool({ name: "add", arguments: { a: 20, b: 22 } });
    await logged.client.close();
    // A refused sign-in counts too.
    gh.setCurrentUser(MALLORY.id);
    await new TestProvider().redirectToAuthorization(new URL(provider.authorizationUrls[0])).catch(
      () => {},
    );

    const audit = async (tool: string) =>
      parseLogLine(await proxy.waitForLog(new RegExp(` info +audit .*tool=${tool}\\b`)))!.fields;
    const echo = await audit("echo");
    assert.equal(echo.user_id, 583231);
    assert.equal(echo.login, "alice");
    assert.match(String(echo.client_id), /^mop_client_/);
    assert.equal(echo.server, "fx");
    assert.equal(echo.outcome, "ok");
    assert.equal(typeof echo.ms, "number");
    assert.equal(echo.arguments, undefined);
    assert.ok(!proxy.logs().includes("audit-marker-1"), "tool arguments are not logged by default");
    assert.equal((await audit("fail")).outcome, "tool_error");
    const add = await audit("add");
    assert.deepEqual(JSON.parse(add.arguments as string), { a: 20, b: 22 }, "logArguments opts in");

    const res = await fetch(`${proxy.admin}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    assert.equal(metric(body, "mop_logins_total", '{outcome="allowed"}'), 2);
    assert.ok(metric(body, "mop_logins_total", '{outcome="refused"}') >= 1);
    assert.equal(metric(body, "mop_tokens_issued_total", '{grant="authorization_code"}'), 2);
    assert.equal(metric(body, "mop_tool_calls_total", '{server="fx",outcome="ok"}'), 1);
    assert.equal(metric(body, "mop_tool_calls_total", '{server="fx",outcome="tool_error"}'), 1);
    assert.ok(metric(body, "mop_http_requests_total", '{route="mcp",status="200"}') >= 4);
    assert.ok(metric(body, "mop_http_requests_total", '{route="mcp",status="401"}') >= 2);
    assert.equal(metric(body, "mop_children", '{server="fx",state="running"}'), 1);
    assert.equal(metric(body, "mop_child_restarts", '{server="fx"}'), 0);
    assert.ok(metric(body, "mop_sessions_active", '{server="fx"}') >= 0);
    assert.match(body, /# TYPE mop_ip_list_age_seconds gauge/);

    // The public listener: the same 404 as any path, from this machine too.
    for (const headers of [{}, { "x-forwarded-for": "198.51.100.9" }] as HeadersInit[]) {
      const remote = await fetch(`${proxy.origin}/metrics`, { headers });
      assert.equal(remote.status, 404);
      assert.deepEqual(await remote.json(), { error: "not_found" });
    }
  } finally {
    await proxy.stop();
    await gh.close();
  }
});
