/**
 * Passing one request to the instance that owns its session, and its answer back, as a gateway
 * does (RFC 9110 §7.6: hop-by-hop fields are not forwarded). Bodies are streamed both ways, so a
 * standalone GET stream or an SSE response reaches the client as the owner writes it; a client
 * that goes away aborts the forwarded request.
 * https://www.rfc-editor.org/rfc/rfc9110#section-7.6
 */
import { CLIENT_IP_HEADER, PEER_HEADER } from "./tags.ts";

/** Fields that belong to one connection, or that the forwarding instance sets itself. */
const NOT_FORWARDED = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "host",
  "content-length",
  PEER_HEADER,
  CLIENT_IP_HEADER,
]);

/** The access-log status of a forwarded request whose client went away before the answer. */
export const CLIENT_CLOSED = 499;

/**
 * The end-to-end fields of a message: without the hop-by-hop ones and those its `Connection`
 * field names (RFC 9110 section 7.6.1), in both directions.
 */
function endToEnd(headers: Headers): Headers {
  const out = new Headers();
  const listed = (headers.get("connection") ?? "").split(",").map((h) => h.trim().toLowerCase());
  for (const [name, value] of headers) {
    if (!NOT_FORWARDED.has(name) && !listed.includes(name)) out.append(name, value);
  }
  return out;
}

/** The request's fields as the owner receives them: end-to-end fields plus the signature. */
export function forwardedHeaders(headers: Headers, signature: string, clientIp: string): Headers {
  const out = endToEnd(headers);
  out.set(PEER_HEADER, signature);
  out.set(CLIENT_IP_HEADER, clientIp);
  return out;
}

/** The owner's answer as this instance returns it: status, end-to-end fields, streamed body. */
export function relayedResponse(response: Response): Response {
  return new Response(response.body, {
    status: response.status,
    headers: endToEnd(response.headers),
  });
}

export interface Forwarding {
  /** The owner's internal origin, e.g. `http://10.0.0.5:7000`. */
  origin: string;
  /** Path and query as the owner matches them (without the public secret path). */
  path: string;
  signature: string;
  clientIp: string;
  /** The body when this instance already read it; else the request's own body is streamed. */
  body?: string;
}

/**
 * Sends `req` to its owner and returns the owner's answer, or null when the owner cannot be
 * reached (gone since its last heartbeat, or its address not allowed to this process).
 */
export async function forwardRequest(
  req: Request,
  to: Forwarding,
  fetcher: typeof fetch = fetch,
): Promise<Response | null> {
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const body = to.body ?? (hasBody ? req.body : null);
  try {
    const response = await fetcher(new URL(to.path, to.origin), {
      method: req.method,
      headers: forwardedHeaders(req.headers, to.signature, to.clientIp),
      body,
      redirect: "manual",
      signal: req.signal,
      // A streamed request body (RequestInit.duplex, https://fetch.spec.whatwg.org/#dom-requestinit-duplex).
      ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
    } as RequestInit);
    return relayedResponse(response);
  } catch {
    // The client went away: nobody reads this (499, "client closed request", as nginx logs it).
    if (req.signal.aborted) return new Response(null, { status: CLIENT_CLOSED });
    return null;
  }
}
