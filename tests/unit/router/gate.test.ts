/**
 * The filters in front of one child (gate.ts, catalogue.ts), with a fake child: list pages keep
 * the child's cursor, the catalogue reads every page and follows list_changed and restarts, a
 * hidden name never reaches the child, resource notifications and errors are filtered and
 * rewritten, and each refusal is reported.
 */
import assert from "node:assert/strict";
import { Mux } from "../../../lib/router/mux.ts";
import { Route } from "../../../lib/router/route.ts";
import type { Refusal } from "../../../lib/router/gate.ts";
import { Policy, type PolicyRules } from "../../../lib/policy/policy.ts";
import { fakeMuxOptions } from "../../helpers/mux.ts";
import { fakeSpawner } from "../../helpers/fake-child.ts";
import { type Json, testReply, testSession } from "../../helpers/downstream.ts";
import { eventually } from "../../helpers/procs.ts";

async function setup(rules: PolicyRules) {
  const fake = fakeSpawner({ capabilities: { tools: { listChanged: true }, resources: {} } });
  const refusals: Refusal[] = [];
  const mux = new Mux(
    "github:1",
    fakeMuxOptions(fake.spawn, {
      policy: new Policy(rules),
      onRefusal: (refusal) => refusals.push(refusal),
    }),
  );
  await mux.supervisor.ready();
  const session = testSession("a");
  mux.sessions.add(session);
  const route = new Route(session, mux, async (m) => void await m.supervisor.ready());
  /** The next request the child gets (after `count` seen so far), once it arrives. */
  const nextAtChild = async (count: number) => {
    await eventually(() => fake.last.traffic.length > count, 30_000, "a request at the child");
    return fake.last.traffic[count];
  };
  return { mux, fake, route, session, refusals, nextAtChild };
}

const tool = (name: string, readOnlyHint?: boolean): Json => ({
  name,
  inputSchema: { type: "object" },
  ...(readOnlyHint === undefined ? {} : { annotations: { readOnlyHint } }),
});

Deno.test("lists: hidden items leave the page, the child's cursor passes through both ways", async () => {
  const { mux, fake, route } = await setup({ tools: { deny: ["rm_*"] }, readOnly: true });
  const reply = testReply();
  route.request({ jsonrpc: "2.0", id: 7, method: "tools/list", params: { cursor: "p2" } }, reply);
  const sent = fake.last.traffic[0];
  assert.deepEqual(sent.params, { cursor: "p2" });
  fake.last.emit({
    id: sent.id,
    result: {
      tools: [tool("rm_rf", true), tool("ls", true), tool("write", false), tool("bare")],
      nextCursor: "p3",
    },
  });
  assert.deepEqual(reply.final(), {
    jsonrpc: "2.0",
    id: 7,
    result: { tools: [tool("ls", true)], nextCursor: "p3" },
  });
  await mux.close();
});

Deno.test("calls: judged by the catalogue (every page), a hidden name never reaches the child", async () => {
  const { mux, fake, route, refusals, nextAtChild } = await setup({ tools: { deny: ["rm_*"] } });
  const call = (id: number, name: string) => ({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name, arguments: {} },
  });
  const hidden = testReply();
  route.request(call(1, "rm_rf"), hidden);
  const page1 = await nextAtChild(0);
  assert.equal(page1.method, "tools/list");
  assert.deepEqual(page1.params, {});
  fake.last.emit({ id: page1.id, result: { tools: [tool("ls")], nextCursor: "c" } });
  const page2 = await nextAtChild(1);
  assert.deepEqual([page2.method, page2.params], ["tools/list", { cursor: "c" }]);
  fake.last.emit({ id: page2.id, result: { tools: [tool("rm_rf")] } });
  await eventually(() => hidden.final() !== undefined);
  const unknown = testReply();
  route.request(call(2, "nosuch"), unknown);
  await eventually(() => unknown.final() !== undefined);
  assert.deepEqual(hidden.final(), {
    jsonrpc: "2.0",
    id: 1,
    error: { code: -32602, message: "Unknown tool: rm_rf" },
  });
  assert.deepEqual(unknown.final(), {
    jsonrpc: "2.0",
    id: 2,
    error: { code: -32602, message: "Unknown tool: nosuch" },
  });
  assert.deepEqual(refusals.map((r) => [r.server, r.method, r.item, r.rule]), [
    ["s", "tools/call", "rm_rf", 'tools.deny "rm_*"'],
  ]);
  assert.equal(fake.last.traffic.length, 2, "only the two list pages reached the child");

  // An allowed tool goes on without another list.
  const ok = testReply();
  route.request(call(3, "ls"), ok);
  const forwarded = await nextAtChild(2);
  assert.equal(forwarded.method, "tools/call");
  fake.last.emit({ id: forwarded.id, result: { content: [] } });
  assert.deepEqual(ok.final(), { jsonrpc: "2.0", id: 3, result: { content: [] } });
  await mux.close();
});

Deno.test("catalogue: list_changed (still delivered) and a restart make the proxy list again", async () => {
  const { mux, fake, route, session, nextAtChild } = await setup({ tools: { allow: ["*"] } });
  const call = (id: number) => ({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name: "new" },
  });
  const first = testReply();
  route.request(call(1), first);
  const list = await nextAtChild(0);
  fake.last.emit({ id: list.id, result: { tools: [] } });
  await eventually(() => first.final() !== undefined);
  assert.equal((first.final()!.error as Json).message, "Unknown tool: new");

  fake.last.emit({ method: "notifications/tools/list_changed" });
  assert.deepEqual(session.notes, [{ jsonrpc: "2.0", method: "notifications/tools/list_changed" }]);
  const second = testReply();
  route.request(call(2), second);
  const again = await nextAtChild(1);
  assert.equal(again.method, "tools/list");
  fake.last.emit({ id: again.id, result: { tools: [tool("new")] } });
  const forwarded = await nextAtChild(2);
  assert.deepEqual([forwarded.method, (forwarded.params as Json).name], ["tools/call", "new"]);
  fake.last.emit({ id: forwarded.id, result: { content: [] } });
  await eventually(() => second.final() !== undefined);

  const before = fake.children.length;
  await fake.last.crash();
  await eventually(() => fake.children.length > before && mux.supervisor.state === "ready");
  const third = testReply();
  route.request(call(3), third);
  assert.equal((await nextAtChild(0)).method, "tools/list", "the new child is listed afresh");
  await mux.close();
});

Deno.test("catalogue: a child that cannot list fails the call, it is not let through", async () => {
  const { mux, fake, route, nextAtChild } = await setup({ readOnly: true });
  const reply = testReply();
  route.request({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x" } }, reply);
  const list = await nextAtChild(0);
  fake.last.emit({ id: list.id, error: { code: -32603, message: "cannot list" } });
  await eventually(() => reply.final() !== undefined);
  assert.deepEqual(reply.final()!.error, { code: -32603, message: "tools/list: cannot list" });
  assert.equal(fake.last.traffic.length, 1);
  await mux.close();
});

Deno.test("resources: hidden URIs refused, the child's not-found answers reworded, updates filtered", async () => {
  const { mux, fake, route, session, refusals } = await setup({
    resources: { allow: ["file:///pub/**"] },
  });
  const read = (id: number, uri: string) => ({
    jsonrpc: "2.0",
    id,
    method: "resources/read",
    params: { uri },
  });
  const hidden = testReply();
  route.request(read(1, "file:///etc/passwd"), hidden);
  assert.deepEqual(hidden.final(), {
    jsonrpc: "2.0",
    id: 1,
    error: { code: -32002, message: "Resource not found", data: { uri: "file:///etc/passwd" } },
  });
  assert.equal(fake.last.traffic.length, 0);
  assert.equal(refusals[0].rule, "resources.allow (no pattern matches)");

  for (const code of [-32002, -32602]) {
    const absent = testReply();
    route.request(read(2, "file:///pub/nope"), absent);
    const sent = fake.last.traffic[fake.last.traffic.length - 1];
    fake.last.emit({ id: sent.id, error: { code, message: `no file:///pub/nope (${code})` } });
    assert.deepEqual(absent.final(), {
      jsonrpc: "2.0",
      id: 2,
      error: { code: -32002, message: "Resource not found", data: { uri: "file:///pub/nope" } },
    });
  }
  const broken = testReply();
  route.request(read(3, "file:///pub/a"), broken);
  const sent = fake.last.traffic[fake.last.traffic.length - 1];
  fake.last.emit({ id: sent.id, error: { code: -32603, message: "disk on fire" } });
  assert.deepEqual(broken.final()!.error, { code: -32603, message: "disk on fire" });

  const updated = (uri: string) => ({ method: "notifications/resources/updated", params: { uri } });
  fake.last.emit(updated("file:///etc/passwd"));
  fake.last.emit(updated("file:///pub/a"));
  assert.deepEqual(session.notes.map((n) => (n.params as Json).uri), ["file:///pub/a"]);
  await mux.close();
});

Deno.test("no filters: requests and answers pass untouched, the proxy lists nothing itself", async () => {
  const fake = fakeSpawner();
  const mux = new Mux("github:1", fakeMuxOptions(fake.spawn, { policy: new Policy({}) }));
  await mux.supervisor.ready();
  assert.equal(mux.gate, null);
  const route = new Route(testSession("a"), mux, async (m) => void await m.supervisor.ready());
  const reply = testReply();
  route.request({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x" } }, reply);
  assert.equal(fake.last.traffic[0].method, "tools/call");
  await mux.close();
});

Deno.test("a filtered list reaches a parsed-message reply parsed, without a second parse", async () => {
  const { mux, fake, route } = await setup({ tools: { deny: ["rm_*"] } });
  const parsed: Json[] = [];
  const texts: string[] = [];
  const reply = {
    streaming: false,
    send: () => {},
    end: (text: string) => void texts.push(text),
    endMessage: (message: Json) => void parsed.push(message),
  };
  route.request({ jsonrpc: "2.0", id: 4, method: "tools/list" }, reply);
  fake.last.emit({ id: fake.last.traffic[0].id, result: { tools: [tool("rm_rf"), tool("ls")] } });
  assert.deepEqual(texts, [], "end(text) is not used when the reply takes the parsed message");
  assert.deepEqual(parsed, [{ jsonrpc: "2.0", id: 4, result: { tools: [tool("ls")] } }]);
  await mux.close();
});

Deno.test("visibleTools: the kept list is used as is unless a tool filter could hide a tool", async () => {
  const cases: [PolicyRules, boolean][] = [
    [{ prompts: { deny: ["*"] } }, true],
    [{ tools: { deny: ["x"] } }, false],
  ];
  for (const [rules, usesList] of cases) {
    const { mux, fake } = await setup(rules);
    const fetched = mux.tools.tools();
    fake.last.emit({ id: fake.last.traffic[0].id, result: { tools: [tool("ls")] } });
    await fetched;
    assert.equal(mux.visibleTools.known !== null, usesList, JSON.stringify(rules));
    assert.equal((await mux.visibleTools.tool("ls"))?.name, "ls");
    await mux.close();
  }
});
