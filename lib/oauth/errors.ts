/**
 * OAuth errors and the JSON responses of the OAuth endpoints: always `application/json`,
 * `Cache-Control: no-store`, and CORS for browser clients.
 */
import { BodyTimeout, BodyTooLarge, mediaType, readBody } from "../http.ts";

/** An OAuth error response (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 8707). */
export class OAuthError extends Error {
  constructor(
    readonly code: string,
    readonly description: string,
    readonly status = 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${code}: ${description}`);
    this.name = "OAuthError";
  }
}

/** CORS for the metadata documents and the machine-to-machine OAuth endpoints. */
export const OAUTH_CORS: Record<string, string> = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-allow-headers": "authorization, content-type, mcp-protocol-version",
  "access-control-max-age": "600",
};

/**
 * A JSON response from an OAuth endpoint, never cached.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 */
export function oauthJson(
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json",
      "cache-control": "no-store",
      pragma: "no-cache",
      ...OAUTH_CORS,
      ...headers,
    },
  });
}

/**
 * The JSON body of an OAuthError.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2
 */
export function oauthErrorResponse(error: OAuthError): Response {
  return oauthJson(
    { error: error.code, error_description: error.description },
    error.status,
    error.headers,
  );
}

/**
 * Answers a CORS preflight for an OAuth endpoint.
 * @see https://fetch.spec.whatwg.org/#cors-preflight-fetch
 */
export function preflight(): Response {
  return new Response(null, { status: 204, headers: OAUTH_CORS });
}

/**
 * Reads an `application/x-www-form-urlencoded` body, bounded; throws OAuthError otherwise.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.2
 */
export async function readForm(
  req: Request,
  timeoutMs: number,
  maxBytes = 16 * 1024,
): Promise<URLSearchParams> {
  if (mediaType(req.headers.get("content-type")) !== "application/x-www-form-urlencoded") {
    throw new OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded");
  }
  const text = await readText(req, maxBytes, timeoutMs);
  const form = new URLSearchParams(text);
  for (const key of new Set(form.keys())) {
    // RFC 6749 §3.1: parameters must not be included more than once.
    if (form.getAll(key).length > 1) {
      throw new OAuthError("invalid_request", `repeated parameter: ${key}`);
    }
  }
  return form;
}

/**
 * Reads a body as text, refusing more than `maxBytes` with a 413 OAuth error.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-15.5.14
 */
export async function readText(req: Request, maxBytes: number, timeoutMs: number): Promise<string> {
  try {
    return await readBody(req, maxBytes, timeoutMs);
  } catch (error) {
    if (error instanceof BodyTooLarge) {
      throw new OAuthError("invalid_request", `the body is larger than ${maxBytes} bytes`, 413);
    }
    if (error instanceof BodyTimeout) {
      throw new OAuthError("invalid_request", "the body was not received in time", 408);
    }
    throw new OAuthError("invalid_request", "could not read the request body");
  }
}
