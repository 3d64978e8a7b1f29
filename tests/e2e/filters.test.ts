/**
 * The per-server filters (`tools`, `prompts`, `resources`, `readOnly`) through every path: 2025
 * Streamable HTTP, legacy SSE and MCP 2026-07-28, each in front of real fixture children. Lists
 * lose the hidden items; a call, get, read, subscribe or completion naming a hidden item gets
 * exactly the answer an unknown one gets; list_changed still arrives and refreshes what the
 * proxy knows; each refusal is an audit line.
 *
 * One proxy serves every test: `tools` runs a child per session (warm 0), so each lane toggles
 * its own child's tool list; audit checks read the log written since their test began; the
 * SIGHUP test, on its own server `fx`, comes last.
 */
import assert from "node:assert/strict";
import {
  CONFORMANCE_FIXTURE,
  fixtureServer,
  type ProxyProcess,
  startProxy,
} from "../helpers/proxy.ts";
import { connect, type Connected } from "../helpers/client.ts";
import { records } from "../helpers/logs.ts";
import { countLogLines, reloadConfig, waitForNewLog } from "../helpers/oauth-flows.ts";
import {
  type Answer,
  type ListenStream,
  modernRequest,
  openListen,
  type RpcError,
  sdkRequest,
  shape,
} from "../helpers/rpc.ts";

const CONFORMANCE = CONFORMANCE_FIXTURE;

const CONFIG = {
  mcpServers: {
    tools: fixtureServer({
      mode: "per-session",
      warm: 0,
      tools: { allow: ["echo", "add", "toggle", "extra", "crash"], deny: ["add"] },
    }),
    ro: fixtureServer({ readOnly: true }),
    conf: {
      command: "deno",
      args: ["run", "--no-prompt", CONFORMANCE],
      tools: { deny: ["test_custom_header"] },
      prompts: { deny: ["test_prompt_with_*"] },
      resources: {
        allow: ["test://static-*", "test://watched-resource"],
        deny: ["test://static-binary"],
      },
    },
    fx: fixtureServer(),
  },
  merged: { enabled: true },
};

/** One request to a server of the proxy, in the lane under test. */
type Rpc = (server: string, method: string, params?: Record<string, unknown>) => Promise<Answer>;

/** The 2025-era lanes: the SDK client over Streamable HTTP or legacy SSE. */
function sdkLane(proxy: ProxyProcess, transport: "streamable" | "sse") {
  const clients = new Map<string, Connected>();
  const client = async (server: string) => {
    let c = clients.get(server);
    if (!c) clients.set(server, c = await connect(proxy.url(server), { transport }));
    return c;
  };
  const rpc: Rpc = async (server, method, params = {}) =>
    sdkRequest((await client(server)).client, method, params);
  return { rpc, client, close: () => Promise.all([...clients.values()].map((c) => c.close())) };
}

/** The 2026-07-28 lane: one POST per request with the revision's envelope and headers. */
function modernRpc(proxy: ProxyProcess): Rpc {
  let id = 1;
  return (server, method, params = {}) => modernRequest(proxy.url(server), id++, method, params);
}

/** A hidden item is answered exactly as an unknown one. */
async function refusedAsUnknown(
  rpc: Rpc,
  server: string,
  method: string,
  hidden: [string, Record<string, unknown>],
  unknown: [string, Record<string, unknown>],
): Promise<RpcError> {
  const refused = await rpc(server, method, hidden[1]);
  const absent = await rpc(server, method, unknown[1]);
  assert.equal(shape(refused, hidden[0]), shape(absent, unknown[0]), `${method} ${hidden[0]}`);
  return refused.error!;
}

const names = (answer: Answer, key: string, field = "name") =>
  (answer.result![key] as Record<string, string>[]).map((item) => item[field]);

async function toolRules(rpc: Rpc): Promise<void> {
  assert.deepEqual(names(await rpc("tools", "tools/list"), "tools"), ["echo", "crash", "toggle"]);
  const call = (name: string, args: Record<string, unknown> = {}) =>
    [name, { name, arguments: args }] as [string, Record<string, unknown>];
  const denied = await refusedAsUnknown(rpc, "tools", "tools/call", call("add"), call("nosuch"));
  assert.equal(denied.code, -32602);
  assert.match(denied.message, /Unknown tool: add$/);
  await refusedAsUnknown(rpc, "tools", "tools/call", call("progress"), call("nosuch"));
  const echoed = await rpc("tools", "tools/call", { name: "echo", arguments: { text: "hi" } });
  assert.deepEqual(echoed.result!.content, [{ type: "text", text: "hi" }]);
  // readOnly: only tools annotated readOnlyHint: true; none at all is hidden too.
  assert.deepEqual(names(await rpc("ro", "tools/list"), "tools"), ["echo"]);
  await refusedAsUnknown(rpc, "ro", "tools/call", call("add", { a: 1, b: 2 }), call("nosuch"));
  await refusedAsUnknown(rpc, "ro", "tools/call", call("pid"), call("nosuch"));
  const ro = await rpc("ro", "tools/call", { name: "echo", arguments: { text: "ro" } });
  assert.deepEqual(ro.result!.content, [{ type: "text", text: "ro" }]);
}

/** The `extra` tool appears with the toggle's list_changed; the proxy learns it from the child. */
async function catalogueFollowsChanges(rpc: Rpc, changed: () => Promise<void>): Promise<void> {
  const extra = ["extra", { name: "extra", arguments: {} }] as [string, Record<string, unknown>];
  await refusedAsUnknown(rpc, "tools", "tools/call", extra, ["nosuch", { name: "nosuch" }]);
  await rpc("tools", "tools/call", { name: "toggle", arguments: {} });
  await changed();
  const called = await rpc("tools", "tools/call", extra[1]);
  assert.deepEqual(called.result!.content, [{ type: "text", text: "extra" }]);
}

async function promptAndResourceRules(rpc: Rpc): Promise<void> {
  const prompts = names(await rpc("conf", "prompts/list"), "prompts");
  assert.deepEqual(prompts, ["test_simple_prompt", "test_input_required_result_prompt"]);
  const get = (name: string) =>
    [name, { name, arguments: { arg1: "a", arg2: "b" } }] as [string, Record<string, unknown>];
  const hiddenPrompt = "test_prompt_with_arguments";
  await refusedAsUnknown(rpc, "conf", "prompts/get", get(hiddenPrompt), get("nosuch"));
  assert.ok((await rpc("conf", "prompts/get", { name: "test_simple_prompt" })).result);

  const complete = (type: string, key: string, value: string) =>
    [value, { ref: { type, [key]: value }, argument: { name: "arg1", value: "pa" } }] as [
      string,
      Record<string, unknown>,
    ];
  const prompt = (name: string) => complete("ref/prompt", "name", name);
  await refusedAsUnknown(
    rpc,
    "conf",
    "completion/complete",
    prompt(hiddenPrompt),
    prompt("nosuch"),
  );
  const ok = await rpc("conf", "completion/complete", prompt("test_simple_prompt")[1]);
  assert.deepEqual((ok.result!.completion as { values: string[] }).values, []);
  const template = (uri: string) => complete("ref/resource", "uri", uri);
  await refusedAsUnknown(
    rpc,
    "conf",
    "completion/complete",
    template("test://template/{id}/data"),
    template("test://nope/{id}"),
  );

  const uris = names(await rpc("conf", "resources/list"), "resources", "uri");
  assert.deepEqual(uris, ["test://static-text", "test://watched-resource"]);
  assert.deepEqual(names(await rpc("conf", "resources/templates/list"), "resourceTemplates"), []);
  const read = (uri: string) => [uri, { uri }] as [string, Record<string, unknown>];
  assert.ok((await rpc("conf", "resources/read", { uri: "test://static-text" })).result);
  const unknown = read("test://nope");
  for (
    const hidden of [
      "test://static-binary",
      "test://template/1/data",
      "test://static-text/../static-binary",
    ]
  ) {
    await refusedAsUnknown(rpc, "conf", "resources/read", read(hidden), unknown);
  }
}

/**
 * The audit lines of the refusals (not of the unknown items), with the rule that hid each, in
 * the log written from `since` (a length of the log) on.
 */
async function auditedRefusals(proxy: ProxyProcess, since: number): Promise<void> {
  const logs = () => proxy.logs().slice(since);
  const last = /audit .*item="?test:\/\/static-text\/\.\.\/static-binary/;
  for (let i = 0; i < 300 && !last.test(logs()); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const refused = records(logs(), "audit").filter((r) => r.outcome === "refused");
  const seen = refused.map((r) => `${r.server} ${r.method} ${r.item}: ${r.rule}`);
  for (
    const line of [
      `tools tools/call add: tools.deny "add"`,
      "tools tools/call progress: tools.allow (no pattern matches)",
      "ro tools/call add: readOnly (no readOnlyHint: true)",
      "ro tools/call pid: readOnly (no readOnlyHint: true)",
      `conf prompts/get test_prompt_with_arguments: prompts.deny "test_prompt_with_*"`,
      `conf completion/complete test_prompt_with_arguments: prompts.deny "test_prompt_with_*"`,
      "conf completion/complete test://template/{id}/data: resources.allow (no pattern matches)",
      `conf resources/read test://static-binary: resources.deny "test://static-binary"`,
      "conf resources/read test://template/1/data: resources.allow (no pattern matches)",
      "conf resources/read test://static-text/../static-binary: " +
      "resources (URI with dot segments or encoded separators)",
    ]
  ) {
    assert.ok(seen.includes(line), `audit line for ${line} in\n${seen.join("\n")}`);
  }
  assert.ok(!seen.some((line) => line.includes("nosuch")), "unknown items are not refusals");
}

Deno.test("filters", async (t) => {
  const proxy = await startProxy(CONFIG);
  try {
    // First: it waits for the first subscription of the conf child and its first refusal.
    await t.step(
      "2026-07-28: a listen stream never subscribes the child to a hidden resource",
      () => listenHidden(proxy),
    );
    await t.step(
      "2026-07-28: lists, calls, gets, reads, completions, listen, audit",
      () => modernLane(proxy),
    );
    for (const transport of ["streamable", "sse"] as const) {
      await t.step(
        `${transport}: lists, calls, gets, reads, completions, subscribe, audit`,
        () => sessionLane(proxy, transport),
      );
    }
    await t.step(
      "on the merged endpoint: lists lose hidden items, hidden names are unknown",
      () => mergedLane(proxy),
    );
    // Last: it changes the config.
    await t.step(
      "SIGHUP applies changed filters to open sessions and running children",
      () => reloaded(proxy),
    );
  } finally {
    await proxy.stop();
  }
});

async function sessionLane(proxy: ProxyProcess, transport: "streamable" | "sse") {
  const since = proxy.logs().length;
  const lane = sdkLane(proxy, transport);
  try {
    await toolRules(lane.rpc);
    const tools = await lane.client("tools");
    const before = tools.listChanged;
    await catalogueFollowsChanges(lane.rpc, async () => {
      for (let i = 0; i < 600 && tools.listChanged === before; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(tools.listChanged, before + 1, "list_changed reaches the client");
    });
    await promptAndResourceRules(lane.rpc);
    const subscribe = (uri: string) => [uri, { uri }] as [string, Record<string, unknown>];
    assert.deepEqual(
      (await lane.rpc("conf", "resources/subscribe", { uri: "test://watched-resource" })).result,
      {},
    );
    const error = await refusedAsUnknown(
      lane.rpc,
      "conf",
      "resources/subscribe",
      subscribe("test://static-binary"),
      subscribe("test://static-text/../x"),
    );
    assert.equal(error.code, -32002);
    await auditedRefusals(proxy, since);
    assert.ok(!proxy.logs().includes("fixture: subscribed to test://static-binary"));
  } finally {
    await lane.close();
  }
}

async function modernLane(proxy: ProxyProcess) {
  const since = proxy.logs().length;
  const rpc = modernRpc(proxy);
  let events: ListenStream | undefined;
  try {
    await toolRules(rpc);
    // A listen stream on the filtered server: list changes arrive; a hidden resource is never
    // subscribed at the child.
    events = await openListen(proxy.url("tools"), { toolsListChanged: true });
    assert.equal((await events.next()).method, "notifications/subscriptions/acknowledged");
    await catalogueFollowsChanges(rpc, async () => {
      assert.equal((await events!.next()).method, "notifications/tools/list_changed");
    });
    await promptAndResourceRules(rpc);
    // A hidden tool's Mcp-Param-* headers are not checked either: it is unknown, not mismatched.
    await refusedAsUnknown(rpc, "conf", "tools/call", [
      "test_custom_header",
      { name: "test_custom_header", arguments: { region: "eu" } },
    ], ["nosuch", { name: "nosuch", arguments: { region: "eu" } }]);
    assert.equal(
      (await rpc("conf", "resources/read", { uri: "test://static-binary" })).error?.code,
      -32602,
      "the 2026 revision's resource-not-found code",
    );
    await auditedRefusals(proxy, since);
  } finally {
    events?.close();
  }
}

async function listenHidden(proxy: ProxyProcess) {
  let events: ListenStream | undefined;
  try {
    events = await openListen(proxy.url("conf"), {
      resourceSubscriptions: ["test://static-binary", "test://watched-resource"],
    });
    assert.equal((await events.next()).method, "notifications/subscriptions/acknowledged");
    await proxy.waitForLog(/fixture: subscribed to test:\/\/watched-resource/);
    await proxy.waitForLog(/audit .*method=resources\/subscribe item=test:\/\/static-binary/);
    assert.ok(!proxy.logs().includes("fixture: subscribed to test://static-binary"));
  } finally {
    events?.close();
  }
}

async function mergedLane(proxy: ProxyProcess) {
  const c = await connect(`${proxy.origin}/mcp`);
  const rpc = (method: string, params: Record<string, unknown>) =>
    sdkRequest(c.client, method, params);
  try {
    const tools = names(await rpc("tools/list", {}), "tools");
    // fx (the SIGHUP test's server, no filters) is behind /mcp too.
    assert.deepEqual(tools.filter((n) => !n.startsWith("conf__") && !n.startsWith("fx__")), [
      "tools__echo",
      "tools__crash",
      "tools__toggle",
      "ro__echo",
    ]);
    const prompts = names(await rpc("prompts/list", {}), "prompts");
    assert.deepEqual(prompts.filter((n) => n.startsWith("conf__")), [
      "conf__test_simple_prompt",
      "conf__test_input_required_result_prompt",
    ]);
    const uris = names(await rpc("resources/list", {}), "resources", "uri");
    assert.deepEqual(uris.filter((u) => u.startsWith("test:")), [
      "test://static-text",
      "test://watched-resource",
    ]);
    const call = (name: string) => rpc("tools/call", { name, arguments: {} });
    assert.equal(
      shape(await call("tools__add"), "add"),
      shape(await call("tools__nosuch"), "nosuch"),
    );
    assert.equal(shape(await call("ro__pid"), "pid"), shape(await call("ro__nosuch"), "nosuch"));
    const read = (uri: string) => rpc("resources/read", { uri });
    assert.equal(
      shape(await read("test://static-binary"), "test://static-binary"),
      shape(await read("test://nope"), "test://nope"),
    );
  } finally {
    await c.close();
  }
}

async function reloaded(proxy: ProxyProcess) {
  const reloads = countLogLines(proxy, /filters reloaded/);
  const lane = sdkLane(proxy, "streamable");
  try {
    const before = names(await lane.rpc("fx", "tools/list"), "tools");
    assert.ok(before.includes("add") && before.includes("echo"));
    await reloadConfig(proxy, (c) => {
      (c.mcpServers as Record<string, Record<string, unknown>>).fx.readOnly = true;
    });
    await waitForNewLog(proxy, /filters reloaded/, reloads);
    assert.deepEqual(names(await lane.rpc("fx", "tools/list"), "tools"), ["echo"]);
    const call = (name: string) =>
      [name, { name, arguments: {} }] as [string, Record<string, unknown>];
    await refusedAsUnknown(lane.rpc, "fx", "tools/call", call("add"), call("nosuch"));
    await reloadConfig(proxy, (c) => {
      delete (c.mcpServers as Record<string, Record<string, unknown>>).fx.readOnly;
    });
    await waitForNewLog(proxy, /filters reloaded/, reloads + 1);
    assert.deepEqual(names(await lane.rpc("fx", "tools/list"), "tools"), before);
  } finally {
    await lane.close();
  }
}
