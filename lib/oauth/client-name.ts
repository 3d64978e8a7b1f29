/**
 * The one cleaner for names clients give themselves (`client_name` from registration or from a
 * client ID metadata document) before they are stored, logged or shown on the consent page.
 * Unicode bidi overrides and zero-width characters could make a name read differently from what
 * it is (for example, visually reversing the note that the proxy cannot verify it).
 * @see https://www.unicode.org/reports/tr9/#Explicit_Directional_Overrides
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-5
 */

/** Longest `client_name` kept, in characters; longer names are cut for display. */
export const MAX_CLIENT_NAME_LENGTH = 200;

/**
 * The name with every control, format (bidi overrides and isolates, zero-width characters) and
 * line or paragraph separator replaced by a space, runs of white space collapsed, trimmed and cut
 * to MAX_CLIENT_NAME_LENGTH characters. An empty result means the client gave no usable name.
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @see https://www.unicode.org/reports/tr9/#Explicit_Directional_Overrides
 */
export function cleanClientName(name: string): string {
  const flat = name.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, " ").replace(/\s+/g, " ").trim();
  return Array.from(flat).slice(0, MAX_CLIENT_NAME_LENGTH).join("");
}
