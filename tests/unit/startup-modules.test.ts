/**
 * What `main.ts serve` loads at start, whatever the config: main.ts, lib/serve.ts and every
 * module they import statically (type-only imports are erased and load nothing). Each module
 * loaded stays in memory for the life of the process, so the parts only some configs or some
 * requests use are imported on first use (lib/lazy.ts); this test fails when one of them is
 * imported statically again.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

/**
 * Loaded on first use only, each with what loads it: its dynamic import must stay, and no
 * static import may reach it from the start.
 */
const LAZY: Record<string, string> = {
  "lib/mcp/modern/handler.ts": "the first 2026-07-28 request (lib/mcp/modern/lane.ts)",
  "lib/mcp/merged/session.ts": "the first session of the merged endpoint (lib/mcp/service.ts)",
  "lib/instances/instances.ts": "a config with instances (lib/serve.ts)",
  "lib/store/postgres.ts": "a config with store.url (lib/store/open.ts)",
  "lib/cli/run.ts": "main.ts init, check, clients and grants (main.ts)",
};

/** The relative specifiers a file loads: static imports and re-exports, then dynamic ones. */
function importsOf(source: string): { loaded: string[]; dynamic: string[] } {
  const loaded: string[] = [];
  const statics = [
    /^import\s+(?!type\b)[^;]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']/gm,
    /^export\s+(?!type\b)[^;]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']/gm,
    /^import\s*["'](\.{1,2}\/[^"']+)["']/gm,
  ];
  for (const pattern of statics) {
    for (const match of source.matchAll(pattern)) loaded.push(match[1]);
  }
  const dynamic = [...source.matchAll(/\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g)]
    .map((m) => m[1]);
  return { loaded, dynamic };
}

function resolve(from: string, specifier: string): string {
  const url = new URL(specifier, new URL(from, ROOT));
  return decodeURIComponent(url.pathname.slice(ROOT.pathname.length));
}

/** Every project file loaded at start by `main.ts serve`. */
async function loadedAtStart(): Promise<Set<string>> {
  const seen = new Set<string>();
  const queue = ["main.ts", "lib/serve.ts"];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = await Deno.readTextFile(new URL(file, ROOT));
    for (const specifier of importsOf(source).loaded) queue.push(resolve(file, specifier));
  }
  return seen;
}

/** Every file of lib/ (and main.ts) that imports `target` dynamically. */
async function dynamicImporters(target: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) await check(path);
    }
  };
  const check = async (path: string) => {
    const source = await Deno.readTextFile(new URL(path, ROOT));
    if (importsOf(source).dynamic.some((s) => resolve(path, s) === target)) found.push(path);
  };
  await walk("lib");
  await check("main.ts");
  return found;
}

Deno.test("serve loads at start none of the modules that are loaded on first use", async () => {
  const atStart = await loadedAtStart();
  assert.ok(atStart.has("lib/server.ts"), "the walk follows the static imports");
  const early = Object.keys(LAZY).filter((file) => atStart.has(file));
  assert.deepEqual(early, [], `imported statically from the start: ${early.join(", ")}`);
});

Deno.test("every module loaded on first use is still imported dynamically somewhere", async () => {
  for (const [file, when] of Object.entries(LAZY)) {
    const importers = await dynamicImporters(file);
    assert.ok(importers.length > 0, `${file} (loaded on ${when}) is imported by no import()`);
  }
});
