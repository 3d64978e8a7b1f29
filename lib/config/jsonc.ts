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
