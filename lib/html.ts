/**
 * HTML that escapes by default: the `markup` tag escapes every interpolated value unless it is
 * itself `Html` (built by `markup` or by an explicit {@link raw}), so a page cannot forget to
 * escape text that came from a client, a URL or a log line.
 * @see https://html.spec.whatwg.org/multipage/parsing.html#escapingString
 *
 * @example
 * ```ts
 * const name = `<script>alert(1)</script>`;
 * const items = ["a", "b"].map((s) => markup`<li>${s}</li>`);
 * markup`<p>${name}</p><ul>${items}</ul>`.toString();
 * // "<p>&#60;script&#62;alert(1)&#60;/script&#62;</p><ul><li>a</li><li>b</li></ul>"
 * ```
 * @module
 */

/** A fragment of markup that is safe to insert as it is. Only `markup` and `raw` make one. */
class SafeHtml {
  readonly #markup: string;
  constructor(markup: string) {
    this.#markup = markup;
  }

  /** The markup. */
  toString(): string {
    return this.#markup;
  }
}

/** Markup built by {@link markup} or marked by {@link raw}; nothing else has this type. */
export type Html = SafeHtml;

/**
 * What a template may interpolate: text and numbers (escaped), `Html` (inserted as is), arrays
 * of these (concatenated), and `null`, `undefined` or `false` (nothing, for conditionals).
 */
export type HtmlValue =
  | Html
  | string
  | number
  | null
  | undefined
  | false
  | readonly HtmlValue[];

/**
 * Escapes the five characters that matter in element content and quoted attribute values
 * (`&`, `<`, `>`, `"`, `'`) as numeric character references.
 * @see https://html.spec.whatwg.org/multipage/syntax.html#character-references
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.toString();
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === null || value === undefined || value === false) return "";
  return escapeHtml(String(value));
}

/**
 * The tag: literal parts as written, every interpolated value escaped (see {@link HtmlValue}).
 * @see https://html.spec.whatwg.org/multipage/syntax.html#elements-2
 */
export function markup(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/**
 * The values rendered one after the other with `separator` between them (escaped likewise).
 * @see https://html.spec.whatwg.org/multipage/parsing.html#escapingString
 */
export function join(values: readonly HtmlValue[], separator: HtmlValue): Html {
  return new SafeHtml(values.map(render).join(render(separator)));
}

/**
 * Marks trusted markup (a constant, never input) to be inserted unescaped. The only way around
 * the escaping, so every use can be found with one search.
 * @see https://html.spec.whatwg.org/multipage/parsing.html#escapingString
 */
export function raw(markup: string): Html {
  return new SafeHtml(markup);
}
