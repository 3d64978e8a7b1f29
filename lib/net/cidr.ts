/**
 * IP address and CIDR parsing and matching for the edge (client IP, allow-lists).
 *
 * Parsing is strict on purpose: these strings come from forwarded headers and downloaded
 * range documents, so anything ambiguous (short or octal-looking IPv4, ports, whitespace) is
 * rejected rather than guessed at. IPv4-mapped IPv6 is folded into IPv4 everywhere, so a
 * dual-stack socket's `::ffff:a.b.c.d` peer matches IPv4 ranges (RFC 4291 §2.5.5.2).
 *
 * @example
 * ```ts
 * const set = new CidrSet(["160.79.104.0/21", "2001:db8::/32"]);
 * set.has("::ffff:160.79.105.1"); // true
 * ```
 * @module
 */

/** 4 for IPv4, 6 for IPv6. */
export type IpFamily = 4 | 6;

/** A parsed, normalised address: mapped IPv6 is already IPv4, zone ids are gone. */
export interface ParsedIp {
  readonly family: IpFamily;
  /** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, `::` compression). */
  readonly address: string;
  /** Big-endian unsigned 32-bit words: one for IPv4, four for IPv6. */
  readonly words: readonly number[];
}

/** A parsed range with its host bits cleared. */
export interface Cidr {
  readonly family: IpFamily;
  readonly prefixLength: number;
  /** The network address (host bits zero). */
  readonly network: ParsedIp;
  /** Canonical `network/prefixLength`. */
  readonly text: string;
}

/** A malformed IP range; the message starts with the offending text. */
export class CidrError extends Error {
  override name = "CidrError";
  constructor(readonly input: string, readonly reason: string) {
    super(`${show(input)}: ${reason}`);
  }
}

/** Quote text for an error message; it may come from the network, so keep it one short line. */
export function show(text: string): string {
  const short = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return /^[0-9A-Za-z.:/%[\]_-]+$/.test(text) && text.length <= 80 ? text : JSON.stringify(short);
}

// RFC 4007 zone ids are interface names or numbers; anything else is not a zone.
const ZONE = /^[0-9A-Za-z_.~-]{1,64}$/;
const V6_CHARS = /^[0-9A-Fa-f:.]+$/;

/** A parsed address before mapped IPv6 is folded: four octets, or eight 16-bit groups. */
type RawIp = { kind: "ipv4"; octets: number[] } | { kind: "ipv6"; parts: number[] };

// Four decimal parts without leading zeros: `010.1.1.1` (octal to some parsers) is refused.
const V4_PART = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
const V4 = new RegExp(`^${V4_PART}(?:\\.${V4_PART}){3}$`);
const GROUP = /^[0-9A-Fa-f]{1,4}$/;

function parseV4(s: string): number[] | null {
  return V4.test(s) ? s.split(".").map(Number) : null;
}

/** Eight 16-bit groups of an IPv6 address (`::` once, an IPv4 tail allowed), or null. */
function parseV6(s: string): number[] | null {
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const side = (text: string): number[] | null => {
    if (text === "") return [];
    const out: number[] = [];
    const groups = text.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseV4(g);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (GROUP.test(g)) out.push(parseInt(g, 16));
      else return null;
    }
    return out;
  };
  const head = side(halves[0]);
  if (!head) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const tail = side(halves[1]);
  // An IPv4 tail is only allowed at the very end.
  if (!tail || (halves[0].includes(".")) || head.length + tail.length > 7) return null;
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

/** Parse without folding mapped IPv6; null when malformed. */
function parseRaw(text: string, allowDecoration: boolean): RawIp | null {
  if (typeof text !== "string" || text.length === 0 || text.length > 128) return null;
  let s = text;
  let decorated = false;
  if (s.startsWith("[") || s.endsWith("]")) {
    if (!allowDecoration || !s.startsWith("[") || !s.endsWith("]")) return null;
    s = s.slice(1, -1);
    decorated = true;
  }
  const pct = s.indexOf("%");
  if (pct !== -1) {
    if (!allowDecoration || !ZONE.test(s.slice(pct + 1))) return null;
    s = s.slice(0, pct);
    decorated = true;
  }
  if (!s.includes(":")) {
    // Brackets and zones only make sense around IPv6.
    const octets = decorated ? null : parseV4(s);
    return octets ? { kind: "ipv4", octets } : null;
  }
  if (!V6_CHARS.test(s)) return null;
  const parts = parseV6(s);
  return parts ? { kind: "ipv6", parts } : null;
}

function fromOctets(octets: readonly number[]): ParsedIp {
  const word = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
  return { family: 4, address: octets.join("."), words: [word] };
}

function fromWords(words: readonly number[]): ParsedIp {
  const parts: number[] = [];
  for (const w of words) parts.push(w >>> 16, w & 0xffff);
  return { family: 6, address: rfc5952(parts), words };
}

/** RFC 5952 text: lower case, no leading zeros, the longest run of zero groups as `::`. */
function rfc5952(parts: readonly number[]): string {
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (parts[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = parts.map((p) => p.toString(16));
  if (bestLen < 2) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

function isMapped(parts: readonly number[]): boolean {
  return parts[0] === 0 && parts[1] === 0 && parts[2] === 0 && parts[3] === 0 && parts[4] === 0 &&
    parts[5] === 0xffff;
}

function normalise(raw: RawIp): ParsedIp {
  if (raw.kind === "ipv4") return fromOctets(raw.octets);
  const p = raw.parts;
  if (isMapped(p)) return fromOctets([p[6] >> 8, p[6] & 255, p[7] >> 8, p[7] & 255]);
  const words = [0, 2, 4, 6].map((i) => ((p[i] << 16) | p[i + 1]) >>> 0);
  return fromWords(words);
}

/**
 * Parse one address: IPv4 (four decimal parts only), IPv6, `[v6]`, `v6%zone`; mapped IPv6 becomes
 * IPv4. Returns null for anything else, including ports and surrounding whitespace.
 */
export function parseIp(text: string): ParsedIp | null {
  const raw = parseRaw(text, true);
  return raw ? normalise(raw) : null;
}

function maskWord(prefixLength: number, wordIndex: number): number {
  const bits = Math.min(32, Math.max(0, prefixLength - 32 * wordIndex));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

function makeCidr(family: IpFamily, words: readonly number[], prefixLength: number): Cidr {
  const masked = words.map((w, i) => (w & maskWord(prefixLength, i)) >>> 0);
  const network = family === 4
    ? fromOctets([
      masked[0] >>> 24,
      (masked[0] >>> 16) & 255,
      (masked[0] >>> 8) & 255,
      masked[0] & 255,
    ])
    : fromWords(masked);
  return { family, prefixLength, network, text: `${network.address}/${prefixLength}` };
}

/**
 * Parse `address/len` or a bare address (/32 or /128). Host bits are accepted and cleared
 * (`10.1.2.3/8` → `10.0.0.0/8`): published lists and hand-written config both contain them,
 * and the intent is unambiguous. Mapped IPv6 ranges of /96 or longer become IPv4 ranges.
 */
export function parseCidr(text: string): Cidr {
  if (typeof text !== "string") throw new CidrError(String(text), "not a string");
  const slash = text.indexOf("/");
  const addrText = slash === -1 ? text : text.slice(0, slash);
  if (/[[\]%]/.test(addrText)) {
    throw new CidrError(text, "brackets and zone ids are not allowed in a range");
  }
  const raw = parseRaw(addrText, false);
  if (!raw) throw new CidrError(text, "not an IP address or range");
  const max = raw.kind === "ipv4" ? 32 : 128;
  let prefixLength = max;
  if (slash !== -1) {
    const lenText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) {
      throw new CidrError(text, "prefix length must be a decimal number");
    }
    prefixLength = Number(lenText);
    if (prefixLength > max) throw new CidrError(text, "prefix length out of range");
  }
  const ip = normalise(raw);
  if (raw.kind === "ipv6" && ip.family === 4) {
    // `::ffff:a.b.c.d/n`: clients are folded to IPv4, so the range must be too to ever match.
    if (prefixLength >= 96) return makeCidr(4, ip.words, prefixLength - 96);
    const p = raw.parts;
    return makeCidr(6, [0, 2, 4, 6].map((i) => ((p[i] << 16) | p[i + 1]) >>> 0), prefixLength);
  }
  return makeCidr(ip.family, ip.words, prefixLength);
}

/**
 * The rate-limit key of a client address: an IPv4 address itself, an IPv6 address's network of
 * `v6Prefix` bits (`2001:db8:0:1::/64`), because one IPv6 subscriber holds a whole /64 or more
 * (RFC 6177 §2, RFC 7934 §6). Unparsable text is its own key.
 */
export function networkKey(ip: string, v6Prefix: number): string {
  const p = parseIp(ip);
  if (!p) return ip;
  if (p.family === 4 || v6Prefix >= 128) return p.address;
  return makeCidr(6, p.words, v6Prefix).text;
}

/**
 * Parse a range written by hand in the config. As {@link parseCidr}, except that an address
 * with host bits set (`192.168.1.5/24`) is refused, naming the network it would mean: RFC 4632
 * §3.1 writes a prefix with its host bits zero, and such an entry is as likely one address with
 * the wrong length as a network.
 */
export function parseConfigCidr(text: string): Cidr {
  const cidr = parseCidr(text);
  const slash = typeof text === "string" ? text.indexOf("/") : -1;
  const given = slash === -1 ? null : parseIp(text.slice(0, slash));
  if (
    given && given.family === cidr.family && given.words.some((w, i) => w !== cidr.network.words[i])
  ) {
    const single = `${given.address}/${given.family === 4 ? 32 : 128}`;
    throw new CidrError(
      text,
      `host bits are set: the network is ${cidr.text} (write that, or ${single} for the one ` +
        `address)`,
    );
  }
  return cidr;
}

/** True for 127.0.0.0/8 and ::1 (mapped `::ffff:127.x.y.z` included); false if unparsable. */
export function isLoopback(ip: string | ParsedIp): boolean {
  const p = typeof ip === "string" ? parseIp(ip) : ip;
  if (!p) return false;
  if (p.family === 4) return p.words[0] >>> 24 === 127;
  return p.words[0] === 0 && p.words[1] === 0 && p.words[2] === 0 && p.words[3] === 1;
}

/**
 * An immutable set of ranges, pre-parsed into masks so `has` is a tight scan with no parsing of
 * the ranges per call. A few hundred ranges scan in well under a microsecond each.
 */
export class CidrSet {
  readonly #v4Net: Uint32Array;
  readonly #v4Mask: Uint32Array;
  readonly #v6Net: Uint32Array;
  readonly #v6Mask: Uint32Array;
  readonly #cidrs: readonly string[];

  /** Build from CIDR strings or parsed ranges; throws CidrError on the first bad string. */
  constructor(entries: Iterable<string | Cidr> = []) {
    const unique = new Map<string, Cidr>();
    for (const entry of entries) {
      const cidr = typeof entry === "string" ? parseCidr(entry) : entry;
      unique.set(cidr.text, cidr);
    }
    const all = [...unique.values()];
    const v4 = all.filter((c) => c.family === 4);
    const v6 = all.filter((c) => c.family === 6);
    this.#v4Net = Uint32Array.from(v4, (c) => c.network.words[0]);
    this.#v4Mask = Uint32Array.from(v4, (c) => maskWord(c.prefixLength, 0));
    this.#v6Net = new Uint32Array(v6.length * 4);
    this.#v6Mask = new Uint32Array(v6.length * 4);
    v6.forEach((c, i) => {
      for (let k = 0; k < 4; k++) {
        this.#v6Net[i * 4 + k] = c.network.words[k];
        this.#v6Mask[i * 4 + k] = maskWord(c.prefixLength, k);
      }
    });
    this.#cidrs = all.map((c) => c.text);
  }

  /** Number of distinct ranges. */
  get size(): number {
    return this.#cidrs.length;
  }

  /** The canonical ranges, IPv4 first in input order. */
  get cidrs(): readonly string[] {
    return this.#cidrs;
  }

  /** Whether the address is inside any range; unparsable text is never inside. */
  has(ip: string | ParsedIp): boolean {
    const p = typeof ip === "string" ? parseIp(ip) : ip;
    if (!p) return false;
    if (p.family === 4) {
      const w = p.words[0];
      const net = this.#v4Net, mask = this.#v4Mask;
      for (let i = 0; i < net.length; i++) {
        if (((w & mask[i]) >>> 0) === net[i]) return true;
      }
      return false;
    }
    const [w0, w1, w2, w3] = p.words;
    const net = this.#v6Net, mask = this.#v6Mask;
    for (let i = 0; i < net.length; i += 4) {
      if (
        ((w0 & mask[i]) >>> 0) === net[i] && ((w1 & mask[i + 1]) >>> 0) === net[i + 1] &&
        ((w2 & mask[i + 2]) >>> 0) === net[i + 2] && ((w3 & mask[i + 3]) >>> 0) === net[i + 3]
      ) return true;
    }
    return false;
  }
}

/** Special-purpose IPv4 ranges (RFC 6890 and successors): never a public server's address. */
const SPECIAL_V4 = new CidrSet([
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.88.99.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
]);

/** Special-purpose IPv6 ranges inside 2000::/3 (the only global unicast block). */
const SPECIAL_V6 = new CidrSet([
  "2001::/23",
  "2001:db8::/32",
  "2002::/16",
  "3fff::/20",
]);
const GLOBAL_V6 = new CidrSet(["2000::/3"]);

/**
 * True only for ordinary global unicast: private, loopback, link-local, CGNAT, multicast,
 * unspecified, documentation, 6to4, Teredo, NAT64, unique-local and IPv4-mapped addresses (even
 * of a public IPv4 address, as written) are all false, as is anything that does not parse.
 */
export function isGlobalUnicast(text: string): boolean {
  const raw = parseRaw(text, false);
  if (!raw) return false;
  if (raw.kind === "ipv4") return !SPECIAL_V4.has(fromOctets(raw.octets));
  if (isMapped(raw.parts)) return false;
  const ip = normalise(raw);
  return GLOBAL_V6.has(ip) && !SPECIAL_V6.has(ip);
}
