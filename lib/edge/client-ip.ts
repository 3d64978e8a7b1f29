/**
 * The real client IP behind a tunnel or proxy chain (each tunnel's header: docs/tunnels.md).
 * @see https://developer.mozilla.org/en-US/docs/Web/HTTP/Reference/Headers/X-Forwarded-For#security_and_privacy_concerns
 *
 * The TCP peer is the client unless the peer is a trusted proxy; only then is a forwarded header
 * believed, and only the part of it that the trusted proxy itself wrote. Every fallback goes
 * toward the peer, never toward a client-written value: a wrong-but-honest IP (the tunnel's
 * loopback address) fails closed at the allow-list, a forged one would fail open.
 *
 * @example
 * ```ts
 * const resolve = createClientIpResolver({ trustedProxies: "cloudflare" });
 * Deno.serve((req, info) => {
 *   const { ip } = resolve(info.remoteAddr.hostname, req.headers);
 *   return new Response(ip);
 * });
 * ```
 * @module
 */
import { CidrSet, isLoopback, type ParsedIp, parseIp } from "../net/cidr.ts";
import { validateClientIpHeader, validateTrustedProxies } from "../config/network-rules.ts";
import type { NetworkSettings } from "../config/network-schema.ts";

/** The `network.trustedProxies` / `network.clientIpHeader` settings. */
export type ClientIpOptions = Pick<NetworkSettings, "trustedProxies" | "clientIpHeader">;

/** The resolved client: `ip` is what policy uses; `via` names the header it came from, if any. */
export interface ClientIp {
  ip: string;
  peer: string;
  via?: string;
  /**
   * The caller is on this machine: a loopback peer that is not a trusted proxy. A tunnel daemon
   * connects from loopback too, so a trusted peer is never local, whatever its header says or
   * lacks (a missing or malformed forwarded header falls back to the peer's address, not to
   * "this machine").
   */
  local: boolean;
}

/** Maps a TCP peer (`info.remoteAddr.hostname`) and request headers to the client IP. */
export type ClientIpResolver = (peer: string, headers: Headers) => ClientIp;

const XFF = "x-forwarded-for";
const CF_CONNECTING_IP = "cf-connecting-ip";

function splitList(value: string): string[] {
  return value.split(",").map((v) => v.replace(/^[ \t]+|[ \t]+$/g, ""));
}

/** The peer is the client; `trusted` says the peer is a proxy whose header was not usable. */
function direct(peer: string, parsed: ParsedIp | null, trusted: boolean): ClientIp {
  const address = parsed?.address ?? peer;
  return { ip: address, peer: address, local: !trusted && parsed !== null && isLoopback(parsed) };
}

function fromHeader(peer: ParsedIp, ip: ParsedIp, via: string): ClientIp {
  return { ip: ip.address, peer: peer.address, via, local: false };
}

/** tailscaled overwrites XFF with one value, so more than one means someone else wrote it. */
function tailscale(peer: string, headers: Headers): ClientIp {
  const p = parseIp(peer);
  const trusted = p !== null && isLoopback(p);
  const value = trusted ? headers.get(XFF) : null;
  if (value === null || value.includes(",")) return direct(peer, p, trusted);
  const ip = parseIp(splitList(value)[0]);
  return ip && p ? fromHeader(p, ip, XFF) : direct(peer, p, trusted);
}

/** ngrok appends the address it saw, so only the rightmost entry is ngrok's own. */
function ngrok(peer: string, headers: Headers): ClientIp {
  const p = parseIp(peer);
  const trusted = p !== null && isLoopback(p);
  const value = trusted ? headers.get(XFF) : null;
  if (value === null) return direct(peer, p, trusted);
  const ip = parseIp(splitList(value).at(-1)!);
  return ip && p ? fromHeader(p, ip, XFF) : direct(peer, p, trusted);
}

/** cloudflared appends to XFF (left entries are client-written), so only CF-Connecting-IP. */
function cloudflare(peer: string, headers: Headers): ClientIp {
  const p = parseIp(peer);
  const trusted = p !== null && isLoopback(p);
  const value = trusted ? headers.get(CF_CONNECTING_IP) : null;
  // Two header lines (joined with ",") did not both come from Cloudflare's edge.
  if (value === null || value.includes(",")) return direct(peer, p, trusted);
  const ip = parseIp(splitList(value)[0]);
  return ip && p ? fromHeader(p, ip, CF_CONNECTING_IP) : direct(peer, p, trusted);
}

/**
 * Walk the header right to left from the trusted peer: each hop that is itself a trusted proxy
 * vouches for the entry to its left; the first untrusted hop is the client. Garbage stops the
 * walk at the last good hop, because nothing left of it was written by a proxy we trust.
 */
function walker(trusted: CidrSet, name: string): ClientIpResolver {
  return (peer, headers) => {
    const p = parseIp(peer);
    const trustedPeer = p !== null && trusted.has(p);
    const value = trustedPeer ? headers.get(name) : null;
    if (value === null || !p) return direct(peer, p, trustedPeer);
    let current = p;
    const entries = splitList(value);
    for (let i = entries.length - 1; i >= 0; i--) {
      const hop = parseIp(entries[i]);
      if (!hop) break;
      current = hop;
      if (!trusted.has(hop)) break;
    }
    return current === p ? direct(peer, p, true) : fromHeader(p, current, name);
  };
}

/**
 * Build a resolver from `network.trustedProxies` / `network.clientIpHeader`; throws
 * NetworkConfigError for an unknown preset, a bad CIDR or a bad header name.
 */
export function createClientIpResolver(options: ClientIpOptions = {}): ClientIpResolver {
  const name = validateClientIpHeader(options.clientIpHeader);
  const trusted = validateTrustedProxies(options.trustedProxies);
  switch (trusted) {
    case null:
      return (peer) => direct(peer, parseIp(peer), false);
    case "tailscale":
      return tailscale;
    case "ngrok":
      return ngrok;
    case "cloudflare":
      return cloudflare;
  }
  return walker(new CidrSet(trusted), name);
}
