/**
 * Retrieval of one client metadata document. It is an SSRF surface, so it is narrow: no
 * redirects, one deadline for DNS, headers and body, a streaming size cap, 200 and JSON only,
 * and for operator hosts given by name, public addresses only.
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document-00#section-6
 * @module
 */
import { isGlobalUnicast } from "../net/cidr.ts";
import { BodyTooLarge, readCapped } from "../http.ts";
import { CimdError, type CimdErrorCode } from "./cimd-document.ts";

/** How to retrieve, and the limits of one retrieval. */
export interface Retrieval {
  fetch: typeof fetch;
  /** A/AAAA lookup, asked only when `checkDns` is set. */
  resolveDns: (host: string) => Promise<string[]>;
  /** Deadline for DNS, headers and body together. */
  timeoutMs: number;
  /** Body size cap in bytes, enforced while streaming. */
  maxBytes: number;
}

/** A retrieved document: the parsed JSON (not yet validated) and the response headers. */
export interface Retrieved {
  value: unknown;
  headers: Headers;
}

/** True only for ordinary global unicast; every special-purpose range counts as unsafe. */
function isPublicAddress(text: string): boolean {
  // Zone ids only exist on link-local addresses, which are refused anyway.
  return !text.includes("%") && isGlobalUnicast(text);
}

/**
 * The system resolver's A and AAAA answers together.
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document-00#section-6
 */
export async function systemResolveDns(host: string): Promise<string[]> {
  const answers = await Promise.allSettled([
    Deno.resolveDns(host, "A"),
    Deno.resolveDns(host, "AAAA"),
  ]);
  return answers.flatMap((a) => a.status === "fulfilled" ? a.value : []);
}

class Deadline extends Error {}

function abortPromise(signal: AbortSignal): Promise<never> {
  const p = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(new Deadline());
    signal.addEventListener("abort", () => reject(new Deadline()), { once: true });
  });
  p.catch(() => {});
  return p;
}

/**
 * Retrieves the JSON at `clientId`; throws CimdError (`fetch_failed`, `unsafe_address`, or
 * `invalid_document` for a body that is not UTF-8 JSON). With `checkDns`, the host's addresses
 * must all be public before anything is sent.
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document-00#section-4
 */
export async function retrieveDocument(
  clientId: string,
  checkDns: boolean,
  how: Retrieval,
): Promise<Retrieved> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), how.timeoutMs);
  const aborted = abortPromise(controller.signal);
  try {
    if (checkDns) await checkAddresses(clientId, new URL(clientId).hostname, how, aborted);
    const init: RequestInit = {
      redirect: "manual",
      signal: controller.signal,
      headers: { accept: "application/json" },
    };
    const response = await Promise.race([how.fetch(clientId, init), aborted]);
    const value = await readJson(clientId, response, how.maxBytes, controller.signal);
    return { value, headers: response.headers };
  } catch (e) {
    if (e instanceof CimdError) throw e;
    const fail = (reason: string) => new CimdError("fetch_failed", clientId, reason, { cause: e });
    const what = "the metadata document";
    if (e instanceof BodyTooLarge) throw fail(`${what} is larger than ${how.maxBytes} bytes`);
    if (e instanceof Deadline || controller.signal.aborted) {
      throw fail(`${what} could not be retrieved within ${how.timeoutMs / 1000} s`);
    }
    // The underlying message names sockets and OS errors: kept as `cause`, never shown.
    throw fail(`${what} could not be retrieved (network error)`);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

async function checkAddresses(
  clientId: string,
  hostname: string,
  how: Retrieval,
  aborted: Promise<never>,
): Promise<void> {
  // Residual risk: fetch resolves the name again, so a rebinding DNS server could still
  // answer differently; operators should list only hosts whose DNS they trust.
  let cause: unknown;
  const addresses = await Promise.race([how.resolveDns(hostname), aborted]).catch((e) => {
    if (e instanceof Deadline) throw e;
    // Under `--allow-net=<hosts>`, Deno.resolveDns also needs the system name server allowed.
    cause = e;
    return [] as string[];
  });
  const host = `the metadata host ${hostname}`;
  if (addresses.length === 0) {
    throw new CimdError("fetch_failed", clientId, `${host} could not be resolved`, { cause });
  }
  if (!addresses.every(isPublicAddress)) {
    const reason = `${host} resolves to a private or otherwise non-public address`;
    throw new CimdError("unsafe_address", clientId, reason);
  }
}

async function readJson(
  clientId: string,
  response: Response,
  maxBytes: number,
  signal: AbortSignal,
): Promise<unknown> {
  const fail = (reason: string, code: CimdErrorCode = "fetch_failed") => {
    response.body?.cancel().catch(() => {});
    return new CimdError(code, clientId, `the metadata document ${reason}`);
  };
  if (response.type === "opaqueredirect" || (response.status >= 300 && response.status < 400)) {
    throw fail("URL answered with a redirect, which is not allowed");
  }
  if (response.status !== 200) throw fail(`URL answered HTTP ${response.status}, not 200`);
  const type = (response.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (!/^application\/([a-z0-9.+-]+\+)?json$/.test(type)) {
    throw fail("is not served as JSON (Content-Type application/json)");
  }
  const bytes = response.body
    ? await readCapped(response.body, maxBytes, signal)
    : new Uint8Array(0);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw fail("is not valid UTF-8", "invalid_document");
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw fail("is not valid JSON", "invalid_document");
  }
}
