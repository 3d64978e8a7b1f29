/**
 * JSON with comments (JSONC), as the config file may be written: `// line` and `/* block *\/`
 * comments and trailing commas, outside strings only. The stripper replaces each of them with
 * spaces of the same length (keeping line breaks), so the text `JSON.parse` sees has every
 * character at its original offset and error positions still give the right line and column.
 */

/**
 * Returns `text` with comments and trailing commas blanked out. Throws a SyntaxError naming the
 * position (as `JSON.parse` does) for an unterminated block comment or a stray `/`.
 */
export function stripJsonComments(text: string): string {
  const out = text.split("");
  const n = text.length;
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) {
      if (out[k] !== "\n" && out[k] !== "\r") out[k] = " ";
    }
  };
  /** The last significant character outside strings and comments (`"` after a string). */
  let previous = "";
  /** A comma after a value that only whitespace and comments have followed so far. */
  let pendingComma = -1;
  let i = 0;
  // A byte-order mark (some Windows editors write one) is not JSON.
  if (text.charCodeAt(0) === 0xfeff) {
    out[0] = " ";
    i = 1;
  }
  while (i < n) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < n && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
      previous = '"';
      pendingComma = -1;
      continue;
    }
    if (c === "/") {
      const next = text[i + 1];
      if (next === "/") {
        let end = i + 2;
        while (end < n && text[end] !== "\n" && text[end] !== "\r") end++;
        blank(i, end);
        i = end;
        continue;
      }
      if (next === "*") {
        const close = text.indexOf("*/", i + 2);
        if (close < 0) throw new SyntaxError(`Unterminated /* comment in JSON at position ${i}`);
        blank(i, close + 2);
        i = close + 2;
        continue;
      }
      throw new SyntaxError(
        `Unexpected "/" (comments are written // or /* */) in JSON at position ${i}`,
      );
    }
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if ((c === "}" || c === "]") && pendingComma >= 0) out[pendingComma] = " ";
    // Only a comma after a value may trail: `{,}` and `[1,,]` stay errors.
    pendingComma = c === "," && previous !== "" && !"{[,:".includes(previous) ? i : -1;
    previous = c;
    i++;
  }
  return out.join("");
}

/** A key written twice in one object: JSON.parse keeps the last one and drops the first. */
export interface DuplicateKey {
  /** Where the object is: its keys and array indexes from the top. */
  path: (string | number)[];
  key: string;
  /** 1-based lines of the first and the repeated occurrence. */
  lines: [number, number];
}

/**
 * Finds keys that appear twice in one object of valid JSON (run it on the stripped text, after
 * `JSON.parse` accepted it). RFC 8259 §4 says names "SHOULD be unique" and leaves duplicates'
 * meaning open; `JSON.parse` silently keeps the last, so a config would lose a server.
 */
export function findDuplicateKeys(json: string): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  let i = 0;
  let line = 1;
  const skipSpace = () => {
    while (i < json.length && /\s/.test(json[i])) {
      if (json[i] === "\n") line++;
      i++;
    }
  };
  const readString = (): string => {
    const start = i;
    i++;
    while (json[i] !== '"') i += json[i] === "\\" ? 2 : 1;
    i++;
    return JSON.parse(json.slice(start, i));
  };
  const value = (path: (string | number)[]): void => {
    skipSpace();
    const c = json[i];
    if (c === "{") {
      i++;
      const seen = new Map<string, number>();
      skipSpace();
      while (json[i] !== "}") {
        if (json[i] === ",") i++;
        skipSpace();
        const keyLine = line;
        const key = readString();
        const first = seen.get(key);
        if (first !== undefined) found.push({ path, key, lines: [first, keyLine] });
        else seen.set(key, keyLine);
        skipSpace();
        i++; // the colon
        value([...path, key]);
        skipSpace();
      }
      i++;
    } else if (c === "[") {
      i++;
      skipSpace();
      for (let index = 0; json[i] !== "]"; index++) {
        if (json[i] === ",") i++;
        value([...path, index]);
        skipSpace();
      }
      i++;
    } else if (c === '"') readString();
    else while (i < json.length && !/[\s,}\]]/.test(json[i])) i++;
  };
  value([]);
  return found;
}
