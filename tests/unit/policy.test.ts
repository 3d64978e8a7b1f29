/** The filter rules: the glob dialect and the policy's decision on each kind of item. */
import assert from "node:assert/strict";
import { compileGlob, globProblem } from "../../lib/policy/glob.ts";
import { canonicalUri, describePolicy, Policy } from "../../lib/policy/policy.ts";

const matches = (pattern: string, value: string, kind: "name" | "uri" = "name") =>
  compileGlob(pattern, kind).test(value);

Deno.test("glob: names are flat, * and ? match any characters, the match is anchored", () => {
  assert.ok(matches("read_*", "read_file"));
  assert.ok(matches("read_*", "read_"));
  assert.ok(!matches("read_*", "xread_file"));
  assert.ok(matches("*write*", "edit/write_file"));
  assert.ok(matches("get_?", "get_a"));
  assert.ok(!matches("get_?", "get_ab"));
  assert.ok(!matches("Read_*", "read_file"), "names are case-sensitive");
  assert.ok(matches("a.b+c(d)|e^$", "a.b+c(d)|e^$"), "regex syntax is literal");
  assert.ok(!matches("a.b", "axb"));
  assert.ok(matches("\\*", "*") && !matches("\\*", "x"), "a backslash escapes");
  assert.ok(matches("é*", "été"));
});

Deno.test("glob: in URIs * and ? stop at '/', ** spans it, the scheme ignores case", () => {
  assert.ok(matches("file:///srv/public/**", "file:///srv/public/a/b.txt", "uri"));
  assert.ok(!matches("file:///srv/public/**", "file:///srv/private/a", "uri"));
  assert.ok(matches("file:///srv/*", "file:///srv/a.txt", "uri"));
  assert.ok(!matches("file:///srv/*", "file:///srv/a/b.txt", "uri"));
  assert.ok(!matches("file:///srv/?", "file:///srv//", "uri"));
  assert.ok(matches("file:///srv/**.md", "file:///srv/a/b.md", "uri"));
  assert.ok(matches("file:///etc/**", "FILE:///etc/passwd", "uri"));
  assert.ok(matches("FiLe:///etc/**", "file:///etc/passwd", "uri"));
  assert.ok(!matches("file:///ETC/**", "file:///etc/passwd", "uri"), "only the scheme");
  assert.ok(matches("file:///{path}", "file:///{path}", "uri"), "a template's braces");
});

Deno.test("glob: mistakes are refused with a reason", () => {
  assert.match(globProblem("", "name")!, /empty pattern/);
  assert.match(globProblem("a***", "uri")!, /"\*\*\*": use "\*" or "\*\*"/);
  assert.match(globProblem("a\\", "name")!, /ends with "\\"/);
  assert.match(globProblem("[abc]*", "name")!, /character classes/);
  assert.match(globProblem("a]", "name")!, /character classes/);
  assert.match(globProblem("{read,list}_*", "name")!, /brace alternatives/);
  assert.match(globProblem("a\u0000", "name")!, /control character/);
  assert.match(globProblem("x".repeat(1025), "name")!, /longer than 1024/);
  assert.equal(globProblem("\\[abc\\]", "name"), null);
  assert.equal(globProblem("a\\,{b}", "uri"), null);
  assert.ok(matches("\\[a\\]", "[a]"));
});

Deno.test("policy: deny wins over allow; allow, when given, is a whitelist; absent shows all", () => {
  const p = new Policy({ tools: { allow: ["read_*", "list_*"], deny: ["*write*"] } });
  assert.deepEqual(p.tool({ name: "read_file" }), { allowed: true });
  assert.deepEqual(p.tool({ name: "read_write" }), {
    allowed: false,
    rule: 'tools.deny "*write*"',
  });
  assert.deepEqual(p.tool({ name: "delete_file" }), {
    allowed: false,
    rule: "tools.allow (no pattern matches)",
  });
  assert.deepEqual(new Policy({ tools: { deny: ["x"] } }).tool({ name: "y" }), { allowed: true });
  assert.deepEqual(new Policy({ tools: { allow: [] } }).tool({ name: "y" }).allowed, false);
  const none = new Policy();
  assert.equal(none.any, false);
  assert.deepEqual(none.tool({ name: "anything" }), { allowed: true });
  assert.deepEqual(none.prompt("anything"), { allowed: true });
  assert.deepEqual(none.resource("file:///a/../b"), { allowed: true });
  assert.deepEqual(none.template("file:///{x}"), { allowed: true });
});

Deno.test("policy: readOnly shows only tools annotated readOnlyHint: true (fail closed)", () => {
  const p = new Policy({ readOnly: true });
  assert.equal(p.filters("tools"), true);
  assert.equal(p.filters("prompts"), false);
  assert.deepEqual(p.tool({ name: "r", annotations: { readOnlyHint: true } }), { allowed: true });
  const hidden = { allowed: false, rule: "readOnly (no readOnlyHint: true)" };
  assert.deepEqual(p.tool({ name: "w", annotations: { readOnlyHint: false } }), hidden);
  assert.deepEqual(p.tool({ name: "u" }), hidden);
  assert.deepEqual(p.tool({ name: "u", annotations: null }), hidden);
  assert.deepEqual(p.tool({ name: "s", annotations: { readOnlyHint: "true" } }), hidden);
  assert.deepEqual(p.tool({ name: "d", annotations: { destructiveHint: false } }), hidden);
  const both = new Policy({ readOnly: true, tools: { deny: ["r"] } });
  assert.deepEqual(both.tool({ name: "r", annotations: { readOnlyHint: true } }), {
    allowed: false,
    rule: 'tools.deny "r"',
  });
});

Deno.test("policy: prompts by name, resources by URI, templates by their text", () => {
  const p = new Policy({
    prompts: { deny: ["*"] },
    resources: { allow: ["file:///srv/public/**", "file:///srv/{name}"], deny: ["**/.git/**"] },
  });
  assert.equal(p.prompt("greet").allowed, false);
  assert.equal(p.resource("file:///srv/public/a.txt").allowed, true);
  assert.equal(p.resource("file:///srv/private/a.txt").allowed, false);
  assert.deepEqual(p.resource("file:///srv/public/x/.git/config"), {
    allowed: false,
    rule: 'resources.deny "**/.git/**"',
  });
  assert.equal(p.template("file:///srv/{name}").allowed, true);
  assert.equal(p.template("file:///srv/{+path}").allowed, false);
});

Deno.test("policy: a filtered server refuses URIs that normalise elsewhere", () => {
  const p = new Policy({ resources: { allow: ["file:///srv/public/**"] } });
  for (
    const uri of [
      "file:///srv/public/../secret",
      "file:///srv/public/..",
      "file:///srv/public/./a",
      "file:///srv/public/%2e%2e/secret",
      "file:///srv/public/..%2Fsecret",
      "file:///srv/public/a%5c..",
      "file:///srv/public\\..\\secret",
    ]
  ) {
    assert.deepEqual(p.resource(uri), {
      allowed: false,
      rule: "resources (URI with dot segments or encoded separators)",
    }, uri);
  }
  assert.ok(canonicalUri("file:///srv/public/a..b/.hidden"));
  assert.ok(canonicalUri("https://example.com/a%20b?q=1"));
});

Deno.test("describePolicy: one line per server for check", () => {
  assert.equal(describePolicy({ readOnly: true }), "readOnly");
  assert.equal(
    describePolicy({
      tools: { allow: ["read_*", "list_*"], deny: ["*write*"] },
      readOnly: true,
      resources: { allow: [] },
    }),
    'tools allow "read_*", "list_*" deny "*write*"; readOnly; resources allow (none)',
  );
  assert.equal(describePolicy({ prompts: { deny: ["*"] } }), 'prompts deny "*"');
});
