/**
 * The pure parts of the merged endpoint: name mangling and shortening, the URI map with
 * collisions and templates, the capability union, the combined instructions and list merging.
 */
import assert from "node:assert/strict";
import {
  exposedName,
  fingerprint,
  NAME_LIMIT,
  NameTable,
  shortenedName,
} from "../../lib/mcp/merged/names.ts";
import {
  parsePrefixed,
  prefixedUri,
  templateMatcher,
  UriTable,
} from "../../lib/mcp/merged/uris.ts";
import {
  combineInstructions,
  itemsOf,
  mergeItems,
  nameTableOf,
  unionCapabilities,
} from "../../lib/mcp/merged/union.ts";

import { ConfigError } from "../../lib/config/check.ts";
import { parseConfigText } from "../../lib/config/load.ts";

const CLIENT_NAME = /^[A-Za-z0-9_-]{1,64}$/;

Deno.test("names: short safe names are <server><separator><name>", () => {
  assert.equal(exposedName("files", "read_file", "__"), "files__read_file");
  assert.equal(exposedName("a", "b-c", "-"), "a-b-c");
});

Deno.test("names: long or unsafe names are shortened deterministically within the limit", () => {
  const long = "x".repeat(80);
  const a = exposedName("files", long, "__");
  assert.equal(a.length, NAME_LIMIT);
  assert.match(a, CLIENT_NAME);
  assert.equal(a, exposedName("files", long, "__")); // deterministic
  assert.ok(a.startsWith("files__xxx"));
  assert.notEqual(a, exposedName("other", long, "__"));
  const dotted = exposedName("files", "read.file", "__");
  assert.match(dotted, CLIENT_NAME);
  assert.match(dotted, /^files__read_file_[0-9a-f]{8}$/);
  // The sanitised form never equals a name that was valid as is.
  assert.notEqual(dotted, exposedName("files", "read_file", "__"));
  assert.match(exposedName("s", "ünïcode tool/name", "__"), CLIENT_NAME);
});

Deno.test("names: fingerprint is FNV-1a 32", () => {
  // Published test vectors: FNV-1a 32 of "" and "a".
  assert.equal(fingerprint(""), "811c9dc5");
  assert.equal(fingerprint("a"), "e40c292c");
  assert.notEqual(shortenedName("s", "n", "__", "1"), shortenedName("s", "n", "__", "2"));
});

Deno.test("names: the table resolves both ways and salts a name taken twice", () => {
  const table = NameTable.build("__", [
    { server: "a", names: ["b__c", "echo"] },
    { server: "a__b", names: ["c"] },
    { server: "b", names: ["echo"] },
  ]);
  assert.equal(table.exposed("a", "b__c"), "a__b__c");
  const second = table.exposed("a__b", "c")!;
  assert.notEqual(second, "a__b__c");
  assert.match(second, CLIENT_NAME);
  assert.deepEqual(table.resolve(second), { server: "a__b", name: "c" });
  assert.deepEqual(table.resolve("a__b__c"), { server: "a", name: "b__c" });
  assert.deepEqual(table.resolve("b__echo"), { server: "b", name: "echo" });
  assert.equal(table.resolve("c__echo"), undefined);
  // Before any list, the plain form of a known server resolves.
  const empty = new NameTable("__");
  assert.deepEqual(empty.resolve("b__echo", ["a", "b"]), { server: "b", name: "echo" });
  assert.equal(empty.resolve("b__", ["b"]), undefined);
  assert.equal(empty.resolve("zz__echo", ["a", "b"]), undefined);
  // A shortened name is only known from a list (the plain parse names another tool).
  assert.notDeepEqual(empty.resolve(exposedName("b", "x.y", "__"), ["b"]), {
    server: "b",
    name: "x.y",
  });
});

Deno.test("uris: shared URIs are prefixed, others pass through, and both resolve", () => {
  const uris = new UriTable();
  uris.set("a", ["fixture://greeting", "file:///a.txt"]);
  uris.set("b", ["fixture://greeting"]);
  assert.equal(uris.exposeUri("a", "file:///a.txt"), "file:///a.txt");
  assert.equal(uris.exposeUri("a", "fixture://greeting"), "mcp-merged://a/fixture://greeting");
  assert.equal(uris.exposeUri("b", "fixture://greeting"), "mcp-merged://b/fixture://greeting");
  const all = ["a", "b"];
  assert.deepEqual(uris.resolve("file:///a.txt", all), { server: "a", uri: "file:///a.txt" });
  assert.deepEqual(uris.resolve("mcp-merged://b/fixture://greeting", all), {
    server: "b",
    uri: "fixture://greeting",
  });
  assert.equal(uris.resolve("fixture://greeting", all), "ambiguous");
  assert.equal(uris.resolve("mcp-merged://c/x", all), "unknown");
  assert.equal(uris.resolve("other://x", all), "unknown");
  assert.deepEqual(uris.resolve("other://x", ["b"]), { server: "b", uri: "other://x" });
  // A server that goes away no longer collides.
  uris.remove("b");
  assert.equal(uris.exposeUri("a", "fixture://greeting"), "fixture://greeting");
});

Deno.test("uris: templates route reads of URIs that were not listed", () => {
  const uris = new UriTable();
  uris.set("a", [], ["file:///srv/{path}"]);
  uris.set("b", [], ["db://{table}/{id}", "file:///srv/{path}"]);
  uris.set("c", [], ["git://{repo}"]);
  const all = ["a", "b", "c"];
  assert.deepEqual(uris.resolve("db://users/1", all), { server: "b", uri: "db://users/1" });
  assert.deepEqual(uris.resolve("git://x", all), { server: "c", uri: "git://x" });
  assert.equal(uris.resolve("file:///srv/x", all), "ambiguous");
  assert.equal(uris.exposeTemplate("a", "file:///srv/{path}"), "mcp-merged://a/file:///srv/{path}");
  assert.equal(uris.exposeTemplate("c", "git://{repo}"), "git://{repo}");
  uris.setTemplates("a", []);
  assert.deepEqual(uris.resolve("file:///srv/x", all), { server: "b", uri: "file:///srv/x" });
  assert.ok(templateMatcher("a+b://{x}{?q}").test("a+b://1?q=2"));
  assert.ok(!templateMatcher("a://{x}/end").test("a://1/other"));
});

Deno.test("uris: the prefixed form parses back", () => {
  assert.deepEqual(parsePrefixed(prefixedUri("s", "file:///x")), { server: "s", uri: "file:///x" });
  assert.equal(parsePrefixed("mcp-merged://s/"), null);
  assert.equal(parsePrefixed("mcp-merged:///x"), null);
  assert.equal(parsePrefixed("file:///x"), null);
});

Deno.test("union: capabilities merge, flags or'ed, lists always announce changes", () => {
  const caps = unionCapabilities([
    { tools: { listChanged: false }, logging: {}, tasks: { list: {} } },
    { resources: { subscribe: true }, prompts: {}, completions: {} },
    { resources: { subscribe: false, listChanged: false }, experimental: { x: { on: true } } },
  ]);
  assert.deepEqual(caps, {
    tools: { listChanged: true },
    logging: {},
    resources: { subscribe: true, listChanged: true },
    prompts: { listChanged: true },
    completions: {},
    experimental: { x: { on: true } },
  });
  assert.deepEqual(unionCapabilities([]), {});
});

Deno.test("union: instructions are combined under server headings", () => {
  assert.equal(
    combineInstructions([
      { server: "a", instructions: "Use a.\n" },
      { server: "b" },
      { server: "c", instructions: "  " },
      { server: "d", instructions: "Use d." },
    ]),
    "## a\nUse a.\n\n## d\nUse d.",
  );
  assert.equal(combineInstructions([{ server: "a" }]), undefined);
});

Deno.test("union: lists are merged with names and URIs as clients see them", () => {
  const tools = [
    { server: "a", items: itemsOf("tools/list", { tools: [{ name: "echo" }, { bad: 1 }] }) },
    { server: "b", items: itemsOf("tools/list", { tools: [{ name: "echo", title: "E" }] }) },
  ];
  const names = nameTableOf("__", tools);
  const uris = new UriTable();
  assert.deepEqual(mergeItems("tools/list", tools, { names, uris }), [
    { name: "a__echo" },
    { name: "b__echo", title: "E" },
  ]);
  assert.deepEqual(itemsOf("tools/list", { tools: "no" }), []);
  uris.set("a", ["x://1"]);
  uris.set("b", ["x://1", "x://2"]);
  const resources = [
    { server: "a", items: [{ uri: "x://1", name: "one" }] },
    { server: "b", items: [{ uri: "x://1", name: "one" }, { uri: "x://2", name: "two" }] },
  ];
  assert.deepEqual(mergeItems("resources/list", resources, { uris }).map((r) => r.uri), [
    "mcp-merged://a/x://1",
    "mcp-merged://b/x://1",
    "x://2",
  ]);
});

Deno.test("config: merged is off by default, on with {}, and the separator is checked", () => {
  const load = (extra: Record<string, unknown>) =>
    parseConfigText(JSON.stringify({ mcpServers: { a: { command: "x" } }, ...extra }), {
      source: "/tmp/config.json",
      env: () => undefined,
    }).config;
  assert.equal(load({}).merged?.enabled, false);
  assert.deepEqual(load({ merged: {} }).merged, { enabled: true, separator: "__" });
  assert.deepEqual(load({ merged: { enabled: true, separator: "-" } }).merged, {
    enabled: true,
    separator: "-",
  });
  for (const separator of [".", "::", "_____", ""]) {
    assert.throws(
      () => load({ merged: { separator } }),
      (e) => e instanceof ConfigError && /^merged\.separator: /.test(e.problems[0]),
      separator,
    );
  }
  assert.throws(
    () => load({ merged: { enable: true } }),
    (e) => e instanceof ConfigError && /merged\.enable: unknown key/.test(e.problems[0]),
  );
});
