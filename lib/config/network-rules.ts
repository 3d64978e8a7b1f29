/**
 * The rules for the `network` settings: which entries `allow`, `rangeSources`,
 * `trustedProxies` and `clientIpHeader` accept. Pure: config loading reports a broken rule as a
 * problem at its key path, and the edge modules apply the same rules when they are built.
 *
 * @example
 * ```ts
 * validateNetwork({ allow: ["openai", "10.0.0.0/8"], trustedProxies: "cloudflare" }); // ok
 * validateAllowList({ allow: ["10.0.0.1/8"] }); // throws NetworkConfigError (host bits set)
 * ```
 * @module
 */
import { type Cidr, CidrError, parseConfigCidr, show } from "../net/cidr.ts";
import { NetworkConfigError } from "./check.ts";

/** Preset names accepted in `network.allow`. */
export const ALLOW_PRESETS = ["openai", "anthropic"] as const;
/** Tunnel presets for `network.trustedProxies`. */
export const TRUSTED_PROXY_PRESETS = ["tailscale", "ngrok", "cloudflare"] as const;
/** One of {@link TRUSTED_PROXY_PRESETS}. */
export type TrustedProxyPreset = typeof TRUSTED_PROXY_PRESETS[number];

/** One `network.allow` entry: a preset, or a CIDR in canonical text. */
export type AllowEntry = { preset: typeof ALLOW_PRESETS[number] } | { cidr: string };

/** The settings the rules read; anything else in the section is ignored here. */
export interface NetworkSection {
  allow?: unknown;
  rangeSources?: unknown;
  trustedProxies?: unknown;
  clientIpHeader?: unknown;
}

/** A range document URL is not acceptable (scheme, credentials, fragment). */
export class RangeSourceError extends Error {
  override name = "RangeSourceError";
}

/** Throws NetworkConfigError for the first setting of `network` that breaks its rule. */
export function validateNetwork(section: NetworkSection): void {
  validateClientIpHeader(section.clientIpHeader);
  validateTrustedProxies(section.trustedProxies);
  validateAllowList(section);
}

/**
 * `network.allow` and `network.rangeSources`: the allow entries, and the source URLs in
 * canonical form; throws NetworkConfigError naming `network.allow[i]` or
 * `network.rangeSources[i]`.
 */
export function validateAllowList(
  section: Pick<NetworkSection, "allow" | "rangeSources">,
): { entries: AllowEntry[]; sources: string[] } {
  const allow = section.allow ?? [];
  const sources = section.rangeSources ?? [];
  if (!Array.isArray(allow)) throw new NetworkConfigError("network.allow", "must be an array");
  if (!Array.isArray(sources)) {
    throw new NetworkConfigError("network.rangeSources", "must be an array");
  }
  return {
    entries: allow.map((entry: unknown, i) => allowEntry(entry, `network.allow[${i}]`)),
    sources: sources.map((entry: unknown, i) => {
      try {
        return validateSourceUrl(entry as string);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        throw new NetworkConfigError(`network.rangeSources[${i}]`, msg);
      }
    }),
  };
}

function allowEntry(entry: unknown, path: string): AllowEntry {
  if (typeof entry !== "string") throw new NetworkConfigError(path, "must be a string");
  if (entry === "anthropic" || entry === "openai") return { preset: entry };
  if (/^[A-Za-z][A-Za-z0-9_-]*$/.test(entry) && !/^[0-9A-Fa-f]+$/.test(entry)) {
    throw new NetworkConfigError(
      path,
      `unknown preset ${show(entry)} (expected ${ALLOW_PRESETS.join(", ")} or a CIDR)`,
    );
  }
  try {
    return { cidr: parseConfigCidr(entry).text };
  } catch (e) {
    throw e instanceof CidrError ? new NetworkConfigError(path, e.message) : e;
  }
}

/**
 * Check a range source URL (https, or http to a loopback host for tests; no credentials, no
 * fragment) and return its href; throws RangeSourceError.
 * @see https://url.spec.whatwg.org/#concept-url-serializer
 */
export function validateSourceUrl(url: string): string {
  if (typeof url !== "string") throw new RangeSourceError("URL must be a string");
  let u: URL;
  try {
    if (url !== url.trim()) throw new TypeError();
    u = new URL(url);
  } catch {
    throw new RangeSourceError(`${show(url)}: not a valid absolute URL`);
  }
  const loopback = ["127.0.0.1", "[::1]", "localhost"].includes(u.hostname);
  if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) {
    throw new RangeSourceError(`${show(url)}: must use https (http only for loopback hosts)`);
  }
  if (u.username || u.password) {
    throw new RangeSourceError(`${show(url)}: must not contain credentials`);
  }
  if (url.includes("#")) throw new RangeSourceError(`${show(url)}: must not contain a fragment`);
  return u.href;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * `network.clientIpHeader` in lower case, `x-forwarded-for` when absent; throws
 * NetworkConfigError for a value that is not a header name, or for `Forwarded`.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-5.1 (field names are tokens)
 */
export function validateClientIpHeader(value: unknown): string {
  if (value === undefined) return "x-forwarded-for";
  if (typeof value !== "string" || !TOKEN.test(value)) {
    throw new NetworkConfigError("network.clientIpHeader", "must be an HTTP header name");
  }
  const name = value.toLowerCase();
  if (name === "forwarded") {
    throw new NetworkConfigError(
      "network.clientIpHeader",
      "the RFC 7239 Forwarded header is not supported; use x-forwarded-for",
    );
  }
  return name;
}

/**
 * `network.trustedProxies`: null when no proxy is trusted, a tunnel preset, or the proxies'
 * ranges; throws NetworkConfigError for an unknown preset, a bad CIDR or a range that trusts
 * every address.
 */
export function validateTrustedProxies(value: unknown): TrustedProxyPreset | Cidr[] | null {
  if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) {
    return null;
  }
  if (typeof value === "string") {
    if ((TRUSTED_PROXY_PRESETS as readonly string[]).includes(value)) {
      return value as TrustedProxyPreset;
    }
    throw new NetworkConfigError(
      "network.trustedProxies",
      `unknown preset ${JSON.stringify(value)} (expected ${
        TRUSTED_PROXY_PRESETS.join(", ")
      } or a list of CIDRs)`,
    );
  }
  if (!Array.isArray(value)) {
    throw new NetworkConfigError("network.trustedProxies", "must be a preset name or CIDR list");
  }
  return value.map((entry: unknown, i) => trustedCidr(entry, `network.trustedProxies[${i}]`));
}

function trustedCidr(entry: unknown, path: string): Cidr {
  if (typeof entry !== "string") throw new NetworkConfigError(path, "must be a CIDR string");
  let cidr: Cidr;
  try {
    cidr = parseConfigCidr(entry);
  } catch (e) {
    if (e instanceof CidrError) throw new NetworkConfigError(path, e.message);
    throw e;
  }
  if (cidr.prefixLength === 0) {
    throw new NetworkConfigError(
      path,
      `${show(entry)} trusts every address, so any client could forge its IP`,
    );
  }
  return cidr;
}
