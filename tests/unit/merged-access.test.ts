/**
 * Per-server access in a merged session: the change to its parts for the servers a person may
 * use now (pure), and a session over fake children asking again at every request, leaving out a
 * server no longer allowed (unknown, no traffic to its child, list_changed) and taking back one
 * allowed again or newly.
 */
import assert from "node:assert/strict";
import { accessChange } from "../../lib/mcp/merged/part.ts";
import { type MergedHost, MergedSession } from "../../lib/mcp/merged/session.ts";
import { Router } from "../../lib/router/router.ts";
import { DEFAULT_LIMITS, SERVER_DEFAULTS, type ServerConfig } from "../../lib/config/schema.ts";
import { silentLogger } from "../../lib/log.ts";
import { fakeSpawner } from "../helpers/fake-child.ts";
import { type Json, testReply } from "../helpers/downstream.ts";
import { eventually } from "../helpers/procs.ts";

Deno.test("merged access: the parts to leave out, to show again and to add", () => {
  const parts = (spec: string) =>
    spec.split(" ").map((p) => ({ name: p.replace("!", ""), barred: p.endsWith("!") }));
  assert.deepEqual(accessChange(parts("a b"), ["a", "b"]), { bar: [], restore: [], add: [] });
  assert.deepEqual(accessChange(parts("a b"), ["a"]), { bar: ["b"], restore: [], add: [] });
  assert.deepEqual(accessChange(parts("a b!"), ["a"]), { bar: [], restore: [], add: [] });
  assert.deepEqual(accessChange(parts("a b!"), ["c", "a", "b", "d"]), {
    bar: [],
    restore: ["b"],
    add: ["c", "d"],
  });
  assert.deepEqual(accessChange(parts("a b"), []), { bar: ["a", "b"], restore: [], add: [] });
});

function server(name: string): ServerConfig {
  return {
    ...SERVER_DEFAULTS,
    name,
    command: "fake",
    args: [],
    env: {},
    mode: "per-user",
    warm: 0,
    logArguments: false,
  };
}

Deno.test("merged access: every request asks again; a server no longer allowed is unknown and announced, one allowed again comes back", async () => {
  const fake = fakeSpawner({ capabilities: { tools: {}, prompts: {} } });
  const configs = ["a", "b", "c"].map(server);
  const router = new Router({
    servers: configs,
    limits: DEFAULT_LIMITS,
    log: silentLogger,
    version: "t",
    spawn: fake.spawn,
  });
  let allowed = ["a", "b"];
  let asked = 0;
  const host: MergedHost = {
    router,
    log: silentLogger,
    settings: { enabled: true, separator: "__" },
    version: "t",
    servers: () => {
      asked++;
      return Promise.resolve(configs.filter((c) => allowed.includes(c.name)));
    },
  };
  const notes: Json[] = [];
  const session = await MergedSession.open(host, {
    id: "m1",
    identity: { key: "github:1" },
    capabilities: { sampling: false, elicitation: false, roots: false },
    logLevel: -1,
    notify: (text) => notes.push(JSON.parse(text)),
  });
  try {
    await session.initialize(undefined);
    session.attach();
    const childOf = (name: string) => fake.children.find((c) => c.spec.server === name)!;
    const changes = () => notes.map((n) => n.method as string).sort();

    // The allow-list narrows between two requests: the next request leaves b out.
    allowed = ["a"];
    const before = asked;
    const replies = [testReply(false), testReply(false)];
    for (const [i, reply] of replies.entries()) {
      session.request(
        { jsonrpc: "2.0", id: i, method: "tools/call", params: { name: "b__x" } },
        reply,
      );
    }
    await eventually(() => replies.every((r) => r.final()), 5000, "the answers");
    for (const reply of replies) {
      assert.deepEqual(reply.final()!.error, { code: -32602, message: "Unknown tool: b__x" });
    }
    assert.equal(asked, before + 1, "concurrent requests share one check");
    assert.deepEqual(childOf("b").traffic, [], "nothing reaches the left-out server's child");
    assert.deepEqual(session.parts.map((p) => [p.name, p.live]), [["a", true], ["b", false]]);
    await eventually(() => notes.length === 2, 5000, "list_changed");
    assert.deepEqual(changes(), [
      "notifications/prompts/list_changed",
      "notifications/tools/list_changed",
    ]);

    // It widens: b comes back, c (never part of the session) gets a part and a child, at the
    // session's log level.
    const level = testReply(false);
    session.request({
      jsonrpc: "2.0",
      id: 9,
      method: "logging/setLevel",
      params: { level: "error" },
    }, level);
    assert.deepEqual(level.final()!.result, {});
    notes.length = 0;
    allowed = ["a", "b", "c"];
    await session.recheck();
    assert.deepEqual(session.parts.map((p) => [p.name, p.live]), [
      ["a", true],
      ["b", true],
      ["c", true],
    ]);
    assert.ok(childOf("c").alive);
    assert.deepEqual(session.parts.map((p) => p.logLevel), [4, 4, 4], "error is rank 4");
    await new Promise((r) => setTimeout(r, 10));
    // One batch for b shown again, one for c started.
    assert.deepEqual(changes(), [
      "notifications/prompts/list_changed",
      "notifications/prompts/list_changed",
      "notifications/tools/list_changed",
      "notifications/tools/list_changed",
    ]);
    // Asked again with nothing changed: no notification.
    await session.recheck();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(notes.length, 4);
  } finally {
    await session.detach();
    await router.close();
  }
});
