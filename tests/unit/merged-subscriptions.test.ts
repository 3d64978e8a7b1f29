/**
 * Resource subscriptions and URI misses on the merged endpoint: the name a client subscribed
 * with (pure), the rule that reads the lists again at most once per change of them (pure), and
 * a catalog over fake children counting the `resources/list` requests that reach them.
 */
import assert from "node:assert/strict";
import { SubscribedUris } from "../../lib/mcp/merged/uris.ts";
import { Refresh } from "../../lib/mcp/merged/refresh.ts";
import { Catalog } from "../../lib/mcp/merged/catalog.ts";
import { Part, type PartOwner } from "../../lib/mcp/merged/part.ts";
import type { Router } from "../../lib/router/router.ts";
import type { Reply } from "../../lib/router/downstream.ts";
import type { ServerConfig } from "../../lib/config/schema.ts";

Deno.test("merged subscriptions: an update is named as the client subscribed, until it unsubscribes", () => {
  const subscribed = new SubscribedUris();
  const x = { server: "b", uri: "test://x" };
  assert.equal(subscribed.clientUri(x), undefined);
  subscribed.add(x, "mcp-merged://b/test://x");
  assert.equal(subscribed.clientUri(x), "mcp-merged://b/test://x");
  assert.equal(subscribed.clientUri({ server: "a", uri: "test://x" }), undefined);
  // Subscribed again under another name: the first name stays.
  subscribed.add(x, "test://x");
  assert.equal(subscribed.clientUri(x), "mcp-merged://b/test://x");
  subscribed.remove(x);
  assert.equal(subscribed.clientUri(x), undefined);
});

Deno.test("merged refresh: the lists are read again once per change of them; concurrent misses share a read", async () => {
  let reads = 0;
  let release = () => {};
  const refresh = new Refresh(() => {
    reads++;
    return new Promise<void>((resolve) => release = resolve);
  });
  const first = [refresh.run("a\nb"), refresh.run("a\nb"), refresh.run("a\nb")];
  assert.equal(reads, 1, "concurrent misses share one read");
  release();
  await Promise.all(first);
  await refresh.run("a\nb");
  assert.equal(reads, 1, "nothing changed: no read");
  // A child announced a change: the next miss reads again, once.
  refresh.stale();
  const second = refresh.run("a\nb");
  release();
  await second;
  await refresh.run("a\nb");
  assert.equal(reads, 2);
  // Another set of servers asked (one came back, or was barred): read again.
  const third = refresh.run("a");
  release();
  await third;
  assert.equal(reads, 3);
  // A change during a read: that read does not count for it.
  refresh.stale();
  const fourth = refresh.run("a");
  assert.equal(reads, 4);
  refresh.stale();
  release();
  await fourth;
  const fifth = refresh.run("a");
  release();
  await fifth;
  assert.equal(reads, 5);
});

/**
 * Two parts whose children serve resources (the URIs of `lists`), behind a fake router that
 * answers their lists and counts the `resources/list` requests reaching each.
 */
function catalogOver(lists: Record<string, string[]>) {
  const owner: PartOwner = {
    id: "m1",
    identity: { key: "github:1" },
    capabilities: { sampling: false, elicitation: false, roots: false },
    fromChild: () => {},
    childGone: () => {},
    childBack: () => {},
  };
  const parts = Object.keys(lists).map((name) => {
    // The fake router is all that reads the config, apart from its name.
    const part = new Part(owner, { name } as ServerConfig);
    part.init = { capabilities: { resources: { subscribe: true } } };
    return part;
  });
  const listed: Record<string, number> = {};
  const router = {
    route: (part: Part) => ({
      mux: {},
      request(message: Record<string, unknown>, reply: Reply) {
        const result = message.method === "resources/list"
          ? { resources: lists[part.name].map((uri) => ({ uri, name: uri })) }
          : { resourceTemplates: [] };
        if (message.method === "resources/list") listed[part.name] = (listed[part.name] ?? 0) + 1;
        queueMicrotask(() => reply.end(JSON.stringify({ jsonrpc: "2.0", id: message.id, result })));
      },
    }),
  } as unknown as Router;
  const catalog = new Catalog(router, "__", parts, () => Promise.resolve());
  return { catalog, parts, listed };
}

let nextId = 1;
const subscribe = (catalog: Catalog, uri: string, method = "resources/subscribe") =>
  catalog.target({ jsonrpc: "2.0", id: nextId++, method, params: { uri } });

Deno.test("merged catalog: 200 unknown URIs read each child's resource list once; a listed one is found after its list_changed", async () => {
  const lists = { a: ["test://x"], b: ["test://x", "test://y"] };
  const { catalog, listed } = catalogOver(lists);
  // One request naming many URIs no server lists, as a listen's resourceSubscriptions is
  // resolved: each is refused as unknown, and each child's list is read once.
  for (let i = 0; i < 200; i++) {
    const answer = await subscribe(catalog, `test://nowhere/${i}`);
    assert.equal(typeof answer, "string");
    assert.match(answer as string, /"code":-32002,"message":"Resource not found"/);
  }
  assert.deepEqual(listed, { a: 1, b: 1 });
  // A burst of concurrent subscribes shares the lists as read.
  const burst = await Promise.all(
    Array.from({ length: 50 }, (_, i) => subscribe(catalog, `test://burst/${i}`)),
  );
  assert.ok(burst.every((answer) => typeof answer === "string"));
  assert.deepEqual(listed, { a: 1, b: 1 });
  // b lists a new resource and announces it: the next miss reads the lists again, once.
  lists.b.push("test://new");
  catalog.changed();
  const found = await subscribe(catalog, "test://new");
  assert.ok(typeof found !== "string", "the newly listed resource is found");
  assert.equal(found.part.name, "b");
  assert.equal(typeof await subscribe(catalog, "test://nowhere/again"), "string");
  assert.deepEqual(listed, { a: 2, b: 2 });
});

Deno.test("merged catalog: an update keeps the prefixed name the client subscribed with once the collision is gone", async () => {
  const { catalog } = catalogOver({ a: ["test://x"], b: ["test://x"] });
  const target = await subscribe(catalog, "mcp-merged://b/test://x");
  assert.ok(typeof target !== "string");
  assert.deepEqual(target.message.params, { uri: "test://x" });
  // a's child is gone: test://x is b's alone now, yet the client subscribed to b's prefixed form.
  catalog.forget("a");
  assert.equal(catalog.updatedUri("b", "test://x"), "mcp-merged://b/test://x");
  // A resource it did not subscribe to is named as a list shows it now.
  assert.equal(catalog.updatedUri("b", "test://other"), "test://other");
  // Unsubscribed: named as a list shows it now.
  assert.ok(
    typeof await subscribe(catalog, "mcp-merged://b/test://x", "resources/unsubscribe") !==
      "string",
  );
  assert.equal(catalog.updatedUri("b", "test://x"), "test://x");
});
