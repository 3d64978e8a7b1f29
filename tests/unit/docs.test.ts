/**
 * The documentation holds together: every relative link in README.md and docs/*.md points to a file
 * that exists (and, with a `#fragment`, to a heading in it), the README keeps the two commands a
 * newcomer needs, `.ci/run` runs the README's test command, and no page points at documents that
 * are not in the repository.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

function read(path: string): string {
  return Deno.readTextFileSync(new URL(path, ROOT));
}

function exists(path: string): boolean {
  try {
    Deno.statSync(new URL(path, ROOT));
    return true;
  } catch {
    return false;
  }
}

/** The pages checked: README.md and every Markdown file under docs/. */
function pages(): string[] {
  const found = ["README.md"];
  for (const entry of Deno.readDirSync(new URL("docs/", ROOT))) {
    if (entry.isFile && entry.name.endsWith(".md")) found.push(`docs/${entry.name}`);
  }
  return found.sort();
}

/** The text outside fenced code blocks, line by line (links in code are not links). */
function prose(markdown: string): string[] {
  const lines: string[] = [];
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (!fenced) lines.push(line);
  }
  return lines;
}

/**
 * The anchors GitHub generates for a page's headings: lower case, punctuation dropped, spaces to
 * hyphens, repeats numbered `-1`, `-2`, …
 * @see https://github.com/github/cmark-gfm (GitHub's renderer) and the behaviour of its heading ids
 */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = heading[1]
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** Every link target of a page's prose (inline code removed first). */
function links(markdown: string): string[] {
  const targets: string[] = [];
  for (const line of prose(markdown)) {
    const text = line.replace(/`[^`]*`/g, "");
    for (const match of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) targets.push(match[1]);
  }
  return targets;
}

/** Resolves `target` relative to `page` (both repository-relative); null for external links. */
function resolve(page: string, target: string): { file: string; fragment?: string } | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null;
  const [path, fragment] = target.split("#", 2);
  if (path === "") return { file: page, fragment };
  const url = new URL(path, new URL(page, "file:///repo/"));
  return { file: decodeURIComponent(url.pathname.slice("/repo/".length)), fragment };
}

Deno.test("docs: GitHub heading anchors", () => {
  const page = "# A\n## Setup 1: this machine only\n## Only the vendors' back ends\n" +
    "## `deno task` and more\n```\n# not a heading\n```\n## Setup 1: this machine only\n";
  assert.deepEqual([...anchors(page)], [
    "a",
    "setup-1-this-machine-only",
    "only-the-vendors-back-ends",
    "deno-task-and-more",
    "setup-1-this-machine-only-1",
  ]);
});

Deno.test("docs: every relative link in README.md and docs/ points to a file and heading", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages()) {
    for (const target of links(read(page))) {
      const where = resolve(page, target);
      if (!where) continue;
      checked++;
      if (!exists(where.file)) {
        broken.push(`${page}: ${target} (no file ${where.file})`);
        continue;
      }
      if (where.fragment && !anchors(read(where.file)).has(where.fragment)) {
        broken.push(`${page}: ${target} (no heading #${where.fragment} in ${where.file})`);
      }
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(checked > 20, `only ${checked} relative links found: is the link pattern right?`);
});

Deno.test("docs: the README starts the proxy and runs the tests, and CI runs that test command", () => {
  const readme = read("README.md");
  const quickStart = readme.slice(readme.indexOf("## Quick start"));
  const block = /```sh\n([\s\S]*?)```/.exec(quickStart)?.[1] ?? "";
  assert.match(block, /^deno task start\b/m);
  const test = /^(deno task test)\b/m.exec(block)?.[1];
  assert.equal(test, "deno task test");
  const ci = read(".ci/run").split("\n").filter((line) => !line.trim().startsWith("#"));
  assert.ok(
    ci.some((line) => line.trim().startsWith(`${test} `) || line.trim() === test),
    ".ci/run must run the README's test command",
  );
});

/** Every file under `dir` (repository-relative) whose name ends in one of `extensions`. */
function filesUnder(dir: string, extensions: string[]): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync(new URL(`${dir}/`, ROOT))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && !entry.name.startsWith(".")) {
      found.push(...filesUnder(path, extensions));
    } else if (entry.isFile && extensions.some((ext) => entry.name.endsWith(ext))) found.push(path);
  }
  return found;
}

Deno.test("docs: no page or code comment refers to documents outside the repository", () => {
  // Built from parts so that this file does not match itself. Cite the RFC, the MCP specification
  // section or a public issue URL instead. (A command-line flag of that name is no document.)
  const outside = new RegExp(
    ["(?<!--)REQUIRE", "MENTS|ARCHITECTURE\\.md|\\bissue [0-9]+\\b"].join(""),
    "i",
  );
  const code = ["lib", "tests", "bench", "examples"].flatMap((dir) => filesUnder(dir, [".ts"]));
  const found: string[] = [];
  for (const page of [...pages(), "bench/README.md", "main.ts", ...code]) {
    read(page).split("\n").forEach((line, i) => {
      if (outside.test(line)) found.push(`${page}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(found, []);
  assert.ok(code.length > 50, `only ${code.length} code files found`);
});
