/** JSONC in the config file: comments and trailing commas outside strings, exact error positions. */
import assert from "node:assert/strict";
import { findDuplicateKeys, stripJsonComments } from "../../lib/config/jsonc.ts";
import { ConfigError } from "../../lib/config/check.ts";
import { parseConfigText } from "../../lib/config/load.ts";

const parse = (text: string) => JSON.parse(stripJsonComments(text));

function problems(text: string): string[] {
  try {
    parseConfigText(text, { source: "/c.json", env: () => undefined });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("jsonc: line and block comments and trailing commas are removed", () => {
  const text = `// heading
{
  /* a block
     over lines */ "a": 1, // after a value
  "b": [1, 2, /* inside */ 3,],
  "c": { "d": true, },
  /* before the end */
}
// trailing comment`;
  assert.deepEqual(parse(text), { a: 1, b: [1, 2, 3], c: { d: true } });
});

Deno.test("jsonc: the stripped text keeps every offset and line break", () => {
  const text = '{ // x\n  "a": [1, /* y\n */ 2,\r\n ], }';
  const stripped = stripJsonComments(text);
  assert.equal(stripped.length, text.length);
  assert.equal(stripped, '{     \n  "a": [1,     \n    2 \r\n ]  }');
  // A trailing comma before a comment and a closing bracket on the next line.
  assert.deepEqual(parse("[1, // one\n]"), [1]);
});

Deno.test("jsonc: comment markers and commas inside strings are kept", () => {
  const text = String.raw`{"url": "https://example.com/a//b", "c": "/* no */", "q": "say \"//\", ]",
    "e": "\\", "f": "a,}"}`;
  assert.deepEqual(parse(text), {
    url: "https://example.com/a//b",
    c: "/* no */",
    q: 'say "//", ]',
    e: "\\",
    f: "a,}",
  });
  // Unchanged text when there is nothing to strip (plain JSON).
  const plain = JSON.stringify({ a: ["//", "/*", "*/", ","], b: { c: "x,]" } }, null, 2);
  assert.equal(stripJsonComments(plain), plain);
});

Deno.test("jsonc: commas that trail nothing stay errors", () => {
  for (const bad of ["{,}", "[,]", "[1,,]", '{"a":,}', "[1,,2]"]) {
    assert.throws(() => parse(bad), SyntaxError, bad);
  }
  // A byte-order mark is blanked.
  assert.deepEqual(parse("\uFEFF{}"), {});
});

Deno.test("jsonc: an unterminated comment or a stray slash names its position", () => {
  assert.throws(
    () => stripJsonComments('{"a": 1 /* open'),
    /Unterminated \/\* comment .*position 8/,
  );
  assert.throws(() => stripJsonComments('{"a": /x/}'), /Unexpected "\/" .*position 6/);
});

Deno.test("jsonc: config errors still give the right line and column", () => {
  const text = `{
  // a comment with a comma, and "quotes" {
  /* a block
     comment */ "mcpServers": {
    "a": { "command": "x" "args": [] },
  },
}`;
  const [problem] = problems(text);
  // The missing comma is after "x" on line 5: column 27 is the `"` of "args".
  assert.match(problem, /^\/c\.json: not valid JSON \(.* at line 5, column 27\)$/);
  const [open] = problems('{\n  "listen": "127.0.0.1:8080",\n  /* never closed\n}');
  assert.equal(open, "/c.json: not valid JSON (Unterminated /* comment at line 3, column 3)");
  const [slash] = problems('{\n\n   / "x": 1\n}');
  assert.match(slash, /Unexpected "\/" .* at line 3, column 4\)$/);
  // A commented config with trailing commas is a valid config.
  const ok = parseConfigText(
    `{
  // the servers
  "mcpServers": { "files": { "command": "npx", "args": ["-y", "x",], }, },
  /* "listen": "0.0.0.0:1", */
}`,
    { source: "/c.json", env: () => undefined },
  );
  assert.deepEqual(ok.config.servers.map((s) => [s.name, s.args]), [["files", ["-y", "x"]]]);
  assert.equal(ok.config.listen.port, 8080);
});

Deno.test("jsonc: a key written twice in one object is found, with its path and lines", () => {
  const text = stripJsonComments(`{
  "a": { "x": 1, "y": [ { "k": 1, "k": 2 } ] },
  // "b": 0, (a comment is not a key)
  "s": "\\"b\\": 1, \\"b\\": 2",
  "b": 1,
  "a": [],
  "b": {},
}`);
  JSON.parse(text);
  assert.deepEqual(findDuplicateKeys(text), [
    { path: ["a", "y", 0], key: "k", lines: [2, 2] },
    { path: [], key: "a", lines: [2, 6] },
    { path: [], key: "b", lines: [5, 7] },
  ]);
  // Same names in different objects are not duplicates.
  assert.deepEqual(
    findDuplicateKeys('{"a": {"n": 1}, "b": {"n": 1}, "c": [{"n": 1}, {"n": 2}]}'),
    [],
  );
  assert.deepEqual(
    problems('{\n  "mcpServers": {\n    "files": {},\n    "files": { "command": "x" }\n  }\n}'),
    [
      "mcpServers.files: written twice (lines 3 and 4); JSON would keep only the last one " +
      "silently: rename or merge them",
    ],
  );
});
