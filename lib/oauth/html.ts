/**
 * The proxy's few HTML pages (consent, errors, "not on the allow-list"): markup built with the
 * escaping `markup` tag only, no scripts, and headers that forbid framing, caching, sniffing and
 * referrers.
 */
import { type Html, markup, raw } from "../html.ts";

/** The headers of every page. */
const PAGE_HEADERS: Record<string, string> = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
  pragma: "no-cache",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
};

const STYLE = raw(
  `body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}code{background:#f3f3f3;padding:0 .25em;border-radius:3px;word-break:break-all}
.warn{background:#fff4d6;border-left:4px solid #e0a800;padding:.5em 1em}
.note{color:#555;font-size:.9em}
button{font:inherit;padding:.5em 1.5em;margin-right:1em;border:1px solid #8c959f;border-radius:6px;background:#fff;color:#222;cursor:pointer}
button.primary{background:#1f6feb;border-color:#1f6feb;color:#fff;font-weight:600}`,
);

const VIEWPORT = markup`<meta name="viewport" content="width=device-width,initial-scale=1">`;

/**
 * A complete page with `title` as its heading.
 * @see https://html.spec.whatwg.org/multipage/syntax.html#writing
 */
export function page(
  title: string,
  body: Html,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  const head =
    markup`<head><meta charset="utf-8">${VIEWPORT}<title>${title}</title><style>${STYLE}</style></head>`;
  const doc =
    markup`<!doctype html><html lang="en">${head}<body><h1>${title}</h1>${body}</body></html>`;
  return new Response(doc.toString(), {
    status,
    headers: { ...PAGE_HEADERS, ...headers },
  });
}

/**
 * An error page for failures that must not be redirected back to the client.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 */
export function errorPage(title: string, message: string, status = 400): Response {
  return page(title, markup`<p>${message}</p>`, status);
}
