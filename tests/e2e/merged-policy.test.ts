/**
 * The merged endpoint `/mcp` and the servers' filters, in both protocol eras: completions are
 * routed to the child that owns the prompt or template (named as that child knows it); a call,
 * get, read or completion naming a hidden item is answered exactly as an unknown one (an unknown
 * name on the same server, or under an unknown server prefix); each such refusal is an audit
 * line naming the real server, the child's item and the rule, and counts in
 * `mop_policy_refusals_total`; unknown items are no refusals.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { connect } from "../helpers/client.ts";
import { records } from "../helpers/logs.ts";
import { type Answer, modernRequest, sdkRequest, shape } from "../helpers/rpc.ts";

const CONFIG = {
  mcpServers: {
    a: fixtureServer({}, ["--name=a"]),
    b: fixtureServer({
      tools: { deny: ["env"] },
      prompts: { deny: ["greet"] },
      resources: { deny: ["fixture://greeting/*", "secret://*"] },
    }, ["--name=b"]),
  },
  merged: { enabled: true },
};

type Rpc = (method: string, params: Record<string, unknown>) => Promise<Answer>;

/** The 2025-era lane: the SDK client on one session of `/mcp`. */
async function sessionLane(proxy: ProxyProcess) {
  const s = await connect(`${proxy.origin}/mcp`);
  const rpc: Rpc = (method, params) => sdkRequest(s.client, method, params);
  return { rpc, close: () => s.close() };
}

/** The 2026-07-28 lane: one POST per request. */
function modernLane(proxy: ProxyProcess): Rpc {
  let id = 1;
  return (method, params) => modernRequest(`${proxy.origin}/mcp`, id++, method, params);
}

const complete = (ref: Record<string, unknown>, name: string, value: string) => ({
  ref,
  argument: { name, value },
});
const prompt = (name: string) => ({ type: "ref/prompt", name });
const template = (uri: string) => ({ type: "ref/resource", uri });

/** `hidden` is answered exactly as each of `unknowns` (item names taken out). */
async function sameAsUnknown(
  rpc: Rpc,
  method: string,
  hidden: [string, Record<string, unknown>],
  ...unknowns: [string, Record<string, unknown>][]
): Promise<void> {
  const refused = shape(await rpc(method, hidden[1]), hidden[0]);
  for (const [item, params] of unknowns) {
    assert.equal(refused, shape(await rpc(method, params), item), `${hidden[0]} vs ${item}`);
  }
}

async function completions(rpc: Rpc): Promise<void> {
  const values = async (params: Record<string, unknown>) => {
    const answer = await rpc("completion/complete", params);
    assert.ok(answer.result, JSON.stringify(answer));
    return (answer.result.completion as { values: string[] }).values;
  };
  // Routed to a's child under its own prompt name: a's values (its name in one of them).
  assert.deepEqual(await values(complete(prompt("a__greet"), "name", "a")), [
    "Ada",
    "Alan",
    "a-friend",
  ]);
  // b hides its template: a's is the only one, exposed as is, and completes there.
  const listed = await rpc("resources/templates/list", {});
  const templates = (listed.result!.resourceTemplates as { uriTemplate: string }[])
    .map((t) => t.uriTemplate);
  assert.deepEqual(templates, ["fixture://greeting/{lang}"]);
  assert.deepEqual(await values(complete(template("fixture://greeting/{lang}"), "lang", "e")), [
    "en",
    "es",
  ]);
  const read = await rpc("resources/read", { uri: "fixture://greeting/fr" });
  assert.match(JSON.stringify(read.result), /hello from the fixture \(fr\)/);
}

async function refusals(rpc: Rpc): Promise<void> {
  const call = (name: string) =>
    [name, { name, arguments: {} }] as [string, Record<string, unknown>];
  await sameAsUnknown(rpc, "tools/call", call("b__env"), call("b__nosuch"), call("zz__env"));
  const get = (name: string) =>
    [name, { name, arguments: { name: "x" } }] as [string, Record<string, unknown>];
  await sameAsUnknown(rpc, "prompts/get", get("b__greet"), get("b__nosuch"), get("zz__greet"));
  const byPrompt = (name: string) =>
    [name, complete(prompt(name), "name", "a")] as [string, Record<string, unknown>];
  await sameAsUnknown(
    rpc,
    "completion/complete",
    byPrompt("b__greet"),
    byPrompt("b__nosuch"),
    byPrompt("zz__greet"),
  );
  const byTemplate = (uri: string) =>
    [uri, complete(template(uri), "lang", "e")] as [string, Record<string, unknown>];
  await sameAsUnknown(
    rpc,
    "completion/complete",
    byTemplate("mcp-merged://b/fixture://greeting/{lang}"),
    byTemplate("mcp-merged://b/fixture://nosuch/{lang}"),
    byTemplate("mcp-merged://zz/fixture://greeting/{lang}"),
    byTemplate("nosuch://{lang}"),
  );
  // A prefixed URI is judged at its server, whose answer names the URI as that server knows it.
  const read = (uri: string) => [uri, { uri }] as [string, Record<string, unknown>];
  const atB = (uri: string) =>
    [uri, { uri: `mcp-merged://b/${uri}` }] as [string, Record<string, unknown>];
  await sameAsUnknown(
    rpc,
    "resources/read",
    atB("fixture://greeting/de"),
    atB("fixture://nosuch"),
    read("mcp-merged://zz/fixture://greeting/de"),
  );
  // A URI no server lists, hidden by b's filters: refused (and audited) as an unknown one.
  await sameAsUnknown(rpc, "resources/read", read("secret://x"), read("nosuch://x"));
}

/** Where the log and the refusal counts stood when a lane began. */
interface Mark {
  at: number;
  counts: Map<string, number>;
}

/** `mop_policy_refusals_total` per `server/method`. */
async function refusalCounts(proxy: ProxyProcess): Promise<Map<string, number>> {
  const metrics = await (await fetch(`${proxy.admin}/metrics`)).text();
  const counts = new Map<string, number>();
  for (
    const m of metrics.matchAll(
      /^mop_policy_refusals_total\{server="(\w+)",method="(\S+?)"\} (\d+)$/gm,
    )
  ) {
    counts.set(`${m[1]}/${m[2]}`, Number(m[3]));
  }
  return counts;
}

async function mark(proxy: ProxyProcess): Promise<Mark> {
  return { at: proxy.logs().length, counts: await refusalCounts(proxy) };
}

/**
 * The audit lines and the metric of the refusals since `since`, and none for the unknown items.
 */
async function audited(proxy: ProxyProcess, since: Mark): Promise<void> {
  const logs = () => proxy.logs().slice(since.at);
  for (let i = 0; i < 300 && !/audit .*item="?secret:\/\/x/.test(logs()); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const refused = records(logs(), "audit").filter((r) => r.outcome === "refused");
  const seen = refused.map((r) => `${r.server} ${r.method} ${r.item}: ${r.rule}`);
  const expected = [
    `b tools/call env: tools.deny "env"`,
    `b prompts/get greet: prompts.deny "greet"`,
    `b completion/complete greet: prompts.deny "greet"`,
    `b completion/complete fixture://greeting/{lang}: resources.deny "fixture://greeting/*"`,
    `b resources/read fixture://greeting/de: resources.deny "fixture://greeting/*"`,
    `b resources/read secret://x: resources.deny "secret://*"`,
  ];
  assert.deepEqual(seen.sort(), expected.sort());
  const metrics = await (await fetch(`${proxy.admin}/metrics`)).text();
  const counts = await refusalCounts(proxy);
  for (
    const [method, n] of [
      ["tools/call", 1],
      ["prompts/get", 1],
      ["completion/complete", 2],
      ["resources/read", 2],
    ]
  ) {
    assert.match(
      metrics,
      new RegExp(`mop_policy_refusals_total\\{server="b",method="${method}"\\} \\d+\\n`),
    );
    const key = `b/${method}`;
    assert.equal((counts.get(key) ?? 0) - (since.counts.get(key) ?? 0), n, key);
  }
}

// One proxy serves both lanes; each lane checks the audit lines and counts it added.
Deno.test("merged filters: completions routed, refusals as unknown, audited", async (t) => {
  const proxy = await startProxy(CONFIG);
  try {
    await t.step("2025-11-25 session", async () => {
      const since = await mark(proxy);
      const lane = await sessionLane(proxy);
      try {
        await completions(lane.rpc);
        await refusals(lane.rpc);
        await audited(proxy, since);
      } finally {
        await lane.close();
      }
    });
    await t.step("2026-07-28", async () => {
      const since = await mark(proxy);
      const rpc = modernLane(proxy);
      await completions(rpc);
      await refusals(rpc);
      await audited(proxy, since);
    });
  } finally {
    await proxy.stop();
  }
});
