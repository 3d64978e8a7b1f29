/**
 * The glob patterns of the per-server filters (`tools`, `prompts`, `resources`): a small,
 * predictable dialect compiled to an anchored regular expression.
 *
 * - Names (tools, prompts) are flat: `*` matches any run of characters, `?` exactly one.
 * - URIs (resources and resource templates): `*` and `?` stop at `/`, `**` spans `/`, so
 *   `file:///srv/public/**` covers every file below `public` and `file:///srv/*` only its direct
 *   entries. The scheme is compared without regard to case (RFC 3986 §3.1,
 *   https://www.rfc-editor.org/rfc/rfc3986#section-3.1).
 * - `\` makes the next character literal. Anything else matches itself, case-sensitively.
 * - Refused, so that a pattern never silently means less than its author thought: an empty
 *   pattern, three or more `*` in a row, a trailing `\`, character classes (`[...]`) and brace
 *   alternatives (`{a,b}`); a brace without a comma (`{path}` of a URI template) is literal.
 *
 * @example
 * ```ts
 * const m = compileGlob("file:///srv/public/**", "uri");
 * m.test("file:///srv/public/a/b.txt"); // true
 * ```
 */

/** Names are flat (tools, prompts); URIs have `/`-separated segments (resources, templates). */
export type GlobKind = "name" | "uri";

/** Longest pattern accepted (a longer one is surely a mistake). */
export const MAX_PATTERN_LENGTH = 1024;

/** A pattern that cannot be compiled; `message` says why, in words for the config's author. */
export class GlobError extends Error {
  override name = "GlobError";
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const REGEX_SYNTAX = /[\^$\\.*+?()[\]{}|/]/;

/** Why `pattern` is not a valid glob, or null when it is. */
export function globProblem(pattern: string, kind: GlobKind): string | null {
  try {
    compileGlob(pattern, kind);
    return null;
  } catch (error) {
    if (error instanceof GlobError) return error.message;
    throw error;
  }
}

/** Compiles a glob of the dialect above to an anchored RegExp; throws GlobError. */
export function compileGlob(pattern: string, kind: GlobKind): RegExp {
  if (pattern.length === 0) throw new GlobError('empty pattern (use "*" for everything)');
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new GlobError(`pattern longer than ${MAX_PATTERN_LENGTH} characters`);
  }
  if (/\p{Cc}/u.test(pattern)) throw new GlobError("control character in pattern");
  checkBraces(pattern);
  let source = "";
  let scheme = kind === "uri" ? SCHEME.exec(pattern)?.[1] : undefined;
  if (scheme && scheme.includes("\\")) scheme = undefined;
  let i = 0;
  if (scheme) {
    source = [...scheme].map(anyCase).join("") + ":";
    i = scheme.length + 1;
  }
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === "\\") {
      if (i + 1 >= pattern.length) {
        throw new GlobError('pattern ends with "\\" (escape a character after it)');
      }
      const next = String.fromCodePoint(pattern.codePointAt(i + 1)!);
      source += literal(next);
      i += 1 + next.length;
      continue;
    }
    if (c === "*") {
      let run = 1;
      while (pattern[i + run] === "*") run++;
      if (run > 2) throw new GlobError(`"${"*".repeat(run)}": use "*" or "**"`);
      source += run === 2 || kind === "name" ? "[\\s\\S]*" : "[^/]*";
      i += run;
      continue;
    }
    if (c === "?") {
      source += kind === "name" ? "[\\s\\S]" : "[^/]";
      i++;
      continue;
    }
    if (c === "[" || c === "]") {
      throw new GlobError(
        `character classes ("[...]") are not supported; write "\\${c}" for a literal "${c}"`,
      );
    }
    const char = String.fromCodePoint(pattern.codePointAt(i)!);
    source += literal(char);
    i += char.length;
  }
  return new RegExp(`^${source}$`, "u");
}

/** `{a,b}` reads as brace expansion in most shells and globbers: refuse it rather than guess. */
function checkBraces(pattern: string): void {
  let open = -1;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      i++;
      continue;
    }
    if (c === "{") open = i;
    else if (c === "}") open = -1;
    else if (c === "," && open >= 0) {
      throw new GlobError(
        `brace alternatives ("{a,b}") are not supported; write one pattern per alternative`,
      );
    }
  }
}

function literal(char: string): string {
  return REGEX_SYNTAX.test(char) ? `\\${char}` : char;
}

function anyCase(char: string): string {
  const lower = char.toLowerCase();
  const upper = char.toUpperCase();
  return lower === upper ? literal(char) : `[${lower}${upper}]`;
}
