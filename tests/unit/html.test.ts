import assert from "node:assert/strict";
import { escapeHtml, type Html, join, markup, raw } from "../../lib/html.ts";

Deno.test("escapeHtml: all five characters become numeric references, nothing else changes", () => {
  assert.equal(escapeHtml(`&<>"'`), "&#38;&#60;&#62;&#34;&#39;");
  assert.equal(escapeHtml("a&amp;b"), "a&#38;amp;b");
  assert.equal(escapeHtml("plain text, ü 🚀 / = ` $"), "plain text, ü 🚀 / = ` $");
  assert.equal(escapeHtml(""), "");
});

Deno.test("markup: interpolated text is escaped, in content and in attribute values", () => {
  const hostile = `"><script>alert('x')</script>&`;
  assert.equal(
    markup`<a href="${hostile}">${hostile}</a>`.toString(),
    `<a href="&#34;&#62;&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;&#38;">` +
      `&#34;&#62;&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;&#38;</a>`,
  );
});

Deno.test("markup: the literal parts are kept as written", () => {
  assert.equal(markup`<p class="a">x & y</p>`.toString(), `<p class="a">x & y</p>`);
  assert.equal(markup``.toString(), "");
  assert.equal(markup`${"a"}${"b"}`.toString(), "ab");
});

Deno.test("markup: nested templates are inserted once, not escaped again", () => {
  const inner = markup`<code>${"<b>"}</code>`;
  assert.equal(markup`<p>${inner}</p>`.toString(), "<p><code>&#60;b&#62;</code></p>");
  const twice = markup`<div>${markup`<p>${inner}</p>`}</div>`;
  assert.equal(twice.toString(), "<div><p><code>&#60;b&#62;</code></p></div>");
});

Deno.test("markup: arrays are concatenated, each item escaped or inserted by its kind", () => {
  const items: Html[] = ["a<", "b>"].map((s) => markup`<li>${s}</li>`);
  assert.equal(markup`<ul>${items}</ul>`.toString(), "<ul><li>a&#60;</li><li>b&#62;</li></ul>");
  assert.equal(
    markup`${["<", markup`<br>`, ["&", [markup`<hr>`]]]}`.toString(),
    "&#60;<br>&#38;<hr>",
  );
  assert.equal(markup`<ul>${[]}</ul>`.toString(), "<ul></ul>");
});

Deno.test("markup: numbers are text; null, undefined and false are nothing", () => {
  assert.equal(markup`id ${42} ${0} ${-1.5}`.toString(), "id 42 0 -1.5");
  assert.equal(markup`[${null}][${undefined}][${false}]`.toString(), "[][][]");
  const shown = (on: boolean) => markup`<p>${on && markup`<b>on</b>`}</p>`.toString();
  assert.equal(shown(true), "<p><b>on</b></p>");
  assert.equal(shown(false), "<p></p>");
});

Deno.test("raw: the one way to insert markup unescaped", () => {
  assert.equal(markup`<style>${raw("a>b{c:'d'}")}</style>`.toString(), "<style>a>b{c:'d'}</style>");
  assert.equal(markup`<style>${"a>b"}</style>`.toString(), "<style>a&#62;b</style>");
  // A string that looks like markup is still text: only Html values skip escaping.
  const looksSafe = { toString: () => "<b>" } as unknown as string;
  assert.equal(markup`${looksSafe}`.toString(), "&#60;b&#62;");
});

Deno.test("join: separator between the items, both escaped unless Html", () => {
  assert.equal(join(["a", "<b>"], ", ").toString(), "a, &#60;b&#62;");
  assert.equal(
    join([markup`<i>1</i>`, markup`<i>2</i>`], markup`<br>`).toString(),
    "<i>1</i><br><i>2</i>",
  );
  assert.equal(join(["x"], "&").toString(), "x");
  assert.equal(join([], "\n").toString(), "");
  assert.equal(join(["a", "b"], "&").toString(), "a&#38;b");
});

Deno.test("lib/ writes HTML only through the markup tag", async () => {
  // A string or template that starts with an HTML tag must be a template tagged `markup`, so
  // that what it interpolates is escaped (comments are skipped).
  const tags =
    "a|b|body|br|button|code|div|form|h1|head|html|i|input|li|meta|p|span|strong|style|ul";
  const start = new RegExp(`(\\w*)([\`"'])<\\/?(?:${tags})[\\s>]`, "g");
  const offenders: string[] = [];
  for await (const file of walkTs(new URL("../../lib/", import.meta.url))) {
    const code = (await Deno.readTextFile(file)).split("\n")
      .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line)).join("\n");
    for (const m of code.matchAll(start)) {
      if (m[2] !== "`" || m[1] !== "markup") offenders.push(`${file.pathname}: ${m[0]}`);
    }
  }
  assert.deepEqual(offenders, []);
});

async function* walkTs(dir: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* walkTs(url);
    else if (entry.name.endsWith(".ts")) yield url;
  }
}
