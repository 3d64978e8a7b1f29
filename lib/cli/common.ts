/**
 * What the setup and owner commands (`init`, `check`, `clients`, `grants`) share: the terminal
 * they talk to, loading the config the way `serve` does, and plain-text tables.
 */
import { ConfigError } from "../config/check.ts";
import { configPathFrom, loadConfig, type LoadedConfig } from "../config/load.ts";
import { absolutePath } from "../config/paths.ts";

/** The process's terminal and environment, replaceable in tests. */
export interface Io {
  /** A line on stdout. */
  out(line: string): void;
  /** A line on stderr. */
  err(line: string): void;
  /** Whether stdin is a terminal: only then are questions asked. */
  interactive: boolean;
  /** Asks one question (`prompt()`); null at the end of input. */
  ask(question: string): string | null;
  cwd: string;
  /** An environment variable; undefined when unset or not permitted. */
  env(name: string): string | undefined;
}

/** The real process: console, `prompt()`, `Deno.stdin.isTerminal()`. */
export function processIo(): Io {
  return {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    interactive: Deno.stdin.isTerminal(),
    ask: (question) => prompt(question),
    cwd: Deno.cwd(),
    env: readEnv,
  };
}

/** `Deno.env.get`, but undefined instead of an error when the variable is not permitted. */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** A config loaded for a command, with where it came from. */
export interface CliConfig {
  loaded: LoadedConfig;
  /** The path as given (flag, $MCP_PROXY_CONFIG or ./config.json). */
  path: string;
  /** Absolute path of the config file (the default path when the demo stands in for it). */
  absolute: string;
  explicit: boolean;
  /**
   * Variables referenced only by `github.clientSecret` or `instances.secret` that are not set:
   * the commands that talk neither to GitHub nor to other instances treat them as set (a
   * placeholder is parsed), and `check` warns.
   */
  unsetSecrets: { key: string; name: string }[];
}

const UNSET_SECRET =
  /^(github\.clientSecret|instances\.secret): environment variable ([A-Za-z_][A-Za-z0-9_]*) is not set$/;
/** Stands for an unset secret; as long as the shortest secret accepted. */
const PLACEHOLDER = "(not set)".padEnd(32, ".");

/**
 * Loads the config as `serve` would (`--config`, else `$MCP_PROXY_CONFIG`, else
 * `./config.json`, the demo when that is missing), except that an unset client-secret variable
 * is tolerated. On a config error prints it as `serve` does and returns exit code 2.
 */
export async function loadCliConfig(
  flag: string | undefined,
  io: Io,
  listen?: string,
): Promise<CliConfig | 2> {
  const where = configPathFrom(flag, io.env);
  const absolute = absolutePath(io.cwd, where.path);
  const load = (env: (name: string) => string | undefined) =>
    loadConfig(where.path, { explicit: where.explicit, env, cwd: io.cwd, listen });
  let problems: string[];
  try {
    return { ...where, absolute, loaded: await load(io.env), unsetSecrets: [] };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems = error.problems;
  }
  const unset = problems.map((p) => UNSET_SECRET.exec(p));
  if (unset.every((m) => m !== null)) {
    const secrets = unset.map((m) => ({ key: m![1], name: m![2] }));
    const names = secrets.map((s) => s.name);
    try {
      const loaded = await load((name) => names.includes(name) ? PLACEHOLDER : io.env(name));
      return { ...where, absolute, loaded, unsetSecrets: secrets };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems = error.problems;
    }
  }
  io.err(`config error (${where.path}):\n  ${problems.join("\n  ")}`);
  return 2;
}

/** The config file's absolute path, as a command would look for it. */
export function configFile(flag: string | undefined, io: Io): string {
  return absolutePath(io.cwd, configPathFrom(flag, io.env).path);
}

/** Lays out rows under upper-case headers, columns separated by two spaces. */
export function table(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => i === cells.length - 1 ? cell : cell.padEnd(widths[i])).join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Makes text from the store safe to print: client names and redirect URIs are chosen by whoever
 * registered the client, so control characters (terminal escapes) and bidirectional overrides
 * become `?`, and long text is shortened.
 */
export function printable(text: string, max = 48): string {
  const clean = text.replace(UNPRINTABLE, "?");
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/** A time from the store as `2025-06-01T12:34:56Z` (UTC). */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Shell-quotes one word for a printed command line (only when it needs it). */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Whether an error is Deno's "not allowed by the permission flags". */
export function notCapable(error: unknown): boolean {
  return error instanceof Deno.errors.NotCapable;
}
