/**
 * The proxy's few HTML pages (consent, errors, "not on the allow-list"): escaped text only,
 * no scripts, and headers that forbid framing, caching, sniffing and referrers.
 */

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const PAGE_HEADERS: Record<string, string> = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
  pragma: "no-cache",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
};

const STYLE =
  `body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}code{background:#f3f3f3;padding:0 .25em;border-radius:3px;word-break:break-all}
.warn{background:#fff4d6;border-left:4px solid #e0a800;padding:.5em 1em}
.note{color:#555;font-size:.9em}
button{font:inherit;padding:.5em 1.5em;margin-right:1em;border:1px solid #8c959f;border-radius:6px;background:#fff;color:#222;cursor:pointer}
button.primary{background:#1f6feb;border-color:#1f6feb;color:#fff;font-weight:600}`;

/** A complete page; `body` must already be escaped HTML. */
export function page(
  title: string,
  body: string,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>` +
    `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
  return new Response(html, { status, headers: { ...PAGE_HEADERS, ...headers } });
}

/** An error page for failures that must not be redirected back to the client. */
export function errorPage(title: string, message: string, status = 400): Response {
  return page(title, `<p>${escapeHtml(message)}</p>`, status);
}
