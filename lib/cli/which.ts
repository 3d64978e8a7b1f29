/**
 * Finds a server's command the way the child would be started: a name is looked up in each
 * `PATH` directory, a path with a `/` is taken relative to the working directory. Used by `check`.
 */
import { absolutePath } from "../config/paths.ts";

/** Where a command was found, why it is missing, or why it could not be looked up. */
export type Lookup =
  | { found: string }
  | { missing: string }
  | { unknown: string };

/**
 * Looks `command` up. `cwd` resolves relative paths (and relative `PATH` entries); `path` is the
 * `PATH` the child gets. A file counts only if it is a regular file with an execute bit.
 */
export function findCommand(
  command: string,
  options: { cwd: string; path: string | undefined },
): Lookup {
  try {
    if (command.includes("/")) {
      const full = absolutePath(options.cwd, command);
      const info = stat(full);
      if (!info) return { missing: `${full} does not exist` };
      if (!info.isFile) return { missing: `${full} is not a file` };
      if (!executable(info)) return { missing: `${full} is not executable (chmod +x it)` };
      return { found: full };
    }
    const dirs = (options.path ?? "").split(":").filter((d) => d !== "");
    let notExecutable: string | undefined;
    for (const dir of dirs) {
      const full = `${absolutePath(options.cwd, dir)}/${command}`.replace(/^\/\//, "/");
      const info = stat(full);
      if (!info || !info.isFile) continue;
      if (executable(info)) return { found: full };
      notExecutable ??= full;
    }
    if (notExecutable) {
      return { missing: `${notExecutable} is on PATH but not executable (chmod +x it)` };
    }
    return {
      missing: dirs.length
        ? `not found in any PATH directory (${dirs.join(":")})`
        : "not found: PATH is empty",
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      return { unknown: `cannot look (${error.message}); run check with --allow-read` };
    }
    throw error;
  }
}

/** `stat` following links; null when there is nothing usable there. */
function stat(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    // Not found, a file where a directory was expected, no access, a dangling link.
    return null;
  }
}

function executable(info: Deno.FileInfo): boolean {
  return info.mode === null || (info.mode & 0o111) !== 0;
}
