/** The test files under a folder, for the group files of `deno task test` (tests/groups/). */

/** Every `*.test.ts` under `dir` (recursively), as file URLs in path order. */
export async function testFiles(dir: URL): Promise<string[]> {
  const found: string[] = [];
  const walk = async (url: URL) => {
    for await (const entry of Deno.readDir(url)) {
      if (entry.isDirectory) await walk(new URL(`${entry.name}/`, url));
      else if (entry.name.endsWith(".test.ts")) found.push(new URL(entry.name, url).href);
    }
  };
  await walk(dir);
  return found.sort();
}
