/**
 * The fixture servers as single-file bundles (`deno bundle`, https://docs.deno.com/runtime/reference/cli/bundle/):
 * a child started from one file with its MCP SDK inlined skips resolving and loading a few hundred
 * npm modules, which is most of a fixture start's CPU (about 0.3 s → 0.2 s each, and the tests
 * start a few hundred). The bundle is built once per content (the source, deno.json and
 * deno.lock, so a new SDK version rebuilds it) into a cache directory shared by the test files;
 * a parallel build of the same content writes its own temp file and renames it over, so a
 * reader never sees half a file.
 */
import { sha256 } from "../../lib/crypto.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const CACHE = `${Deno.env.get("TMPDIR") ?? "/tmp"}/mop-test-fixtures`;

/** The path of the bundle of `tests/fixtures/<name>.ts`, built first if this content has none. */
export async function bundledFixture(name: string): Promise<string> {
  const source = `${ROOT}/tests/fixtures/${name}.ts`;
  const parts = await Promise.all(
    [source, `${ROOT}/deno.json`, `${ROOT}/deno.lock`].map((p) => Deno.readTextFile(p)),
  );
  const hash = (await sha256(parts.join("\0"))).slice(0, 16);
  const target = `${CACHE}/${name}-${hash}.js`;
  try {
    await Deno.stat(target);
    return target;
  } catch {
    // Not built yet.
  }
  await Deno.mkdir(CACHE, { recursive: true });
  const temp = await Deno.makeTempFile({ dir: CACHE, prefix: `${name}-`, suffix: ".tmp.js" });
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "--minify",
      "--keep-names",
      "-o",
      temp,
      source,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(temp).catch(() => {});
    throw new Error(`deno bundle ${source} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  await Deno.rename(temp, target);
  return target;
}
