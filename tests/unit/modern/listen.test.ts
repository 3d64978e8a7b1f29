/** subscriptions/listen: the filter, what is honored, tagging, and resource reference counts. */
import assert from "node:assert/strict";
import {
  accepts,
  honored,
  Listener,
  parseFilter,
  ResourceSubscriptions,
  tagged,
} from "../../../lib/mcp/modern/listen.ts";
import { SseRegistry } from "../../../lib/mcp/sse.ts";
import { SERVER_DEFAULTS } from "../../../lib/config/schema.ts";

Deno.test("parseFilter: booleans and a list of URIs; anything else is malformed", () => {
  assert.deepEqual(parseFilter({ toolsListChanged: true, promptsListChanged: false }), {
    toolsListChanged: true,
  });
  assert.deepEqual(parseFilter({ resourceSubscriptions: ["a", "a", "b"] }), {
    resourceSubscriptions: ["a", "b"],
  });
  assert.deepEqual(parseFilter({}), {});
  assert.equal(parseFilter(null), null);
  assert.equal(parseFilter({ toolsListChanged: "yes" }), null);
  assert.equal(parseFilter({ resourceSubscriptions: [1] }), null);
});

Deno.test("honored: only what the child's capabilities promise", () => {
  const filter = {
    toolsListChanged: true as const,
    promptsListChanged: true as const,
    resourcesListChanged: true as const,
    resourceSubscriptions: ["u"],
  };
  assert.deepEqual(honored(filter, { tools: { listChanged: true }, resources: {} }), {
    toolsListChanged: true,
  });
  assert.deepEqual(honored(filter, { resources: { subscribe: true, listChanged: true } }), {
    resourcesListChanged: true,
    resourceSubscriptions: ["u"],
  });
});

Deno.test("accepts and tagged: filtered, with the subscription id in _meta", () => {
  const filter = { toolsListChanged: true as const, resourceSubscriptions: ["u"] };
  assert.equal(accepts(filter, { method: "notifications/tools/list_changed" }), true);
  assert.equal(accepts(filter, { method: "notifications/prompts/list_changed" }), false);
  assert.equal(
    accepts(filter, { method: "notifications/resources/updated", params: { uri: "u" } }),
    true,
  );
  assert.equal(
    accepts(filter, { method: "notifications/resources/updated", params: { uri: "v" } }),
    false,
  );
  assert.equal(accepts(filter, { method: "notifications/message" }), false);
  assert.deepEqual(
    JSON.parse(tagged({ method: "m", params: { uri: "u", _meta: { k: 1 } } }, "s1")),
    {
      jsonrpc: "2.0",
      method: "m",
      params: { uri: "u", _meta: { k: 1, "io.modelcontextprotocol/subscriptionId": "s1" } },
    },
  );
});

Deno.test("ResourceSubscriptions: one subscribe per resource, unsubscribe after the last", () => {
  const subs = new ResourceSubscriptions();
  assert.deepEqual(subs.add("child", ["a", "b"]), ["a", "b"]);
  assert.deepEqual(subs.add("child", ["a"]), []);
  assert.deepEqual(subs.add("other", ["a"]), ["a"]);
  assert.deepEqual(subs.remove("child", ["a", "b"]), ["b"]);
  assert.deepEqual(subs.remove("child", ["a"]), ["a"]);
  assert.deepEqual(subs.remove("child", ["a"]), []);
});

Deno.test("ResourceSubscriptions: a new child process is subscribed again, once", () => {
  const subs = new ResourceSubscriptions();
  subs.add("child", ["a", "b"]);
  subs.add("child", ["a"]);
  assert.deepEqual(subs.renew("child", 101), ["a", "b"]);
  assert.deepEqual(subs.renew("child", 101), [], "the same process: already renewed");
  assert.deepEqual(subs.renew("other", 101), [], "nothing wanted there");
  subs.remove("child", ["b"]);
  assert.deepEqual(subs.renew("child", 102), ["a"]);
  subs.remove("child", ["a", "a"]);
  assert.deepEqual(subs.renew("child", 103), []);
});

Deno.test("Listener: acknowledgement first, then only the filtered notifications", async () => {
  let closed = 0;
  const listener = new Listener({
    id: 7,
    server: { name: "s", command: "x", args: [], env: {}, logArguments: false, ...SERVER_DEFAULTS },
    identity: { key: "anonymous" },
    filter: { toolsListChanged: true },
    serverInfo: { name: "child", version: "1" },
    registry: new SseRegistry(),
    onClose: () => closed++,
  });
  listener.notify(JSON.stringify({ jsonrpc: "2.0", method: "notifications/prompts/list_changed" }));
  listener.notify(JSON.stringify({ jsonrpc: "2.0", method: "notifications/tools/list_changed" }));
  listener.notify("not json");
  listener.end();
  const text = await listener.response.text();
  const messages = text.split("\n\n").filter(Boolean).map((e) => JSON.parse(e.slice(6)));
  assert.deepEqual(messages.map((m) => m.method ?? "result"), [
    "notifications/subscriptions/acknowledged",
    "notifications/tools/list_changed",
    "result",
  ]);
  assert.equal(messages[2].id, 7);
  assert.equal(closed, 1);
});
