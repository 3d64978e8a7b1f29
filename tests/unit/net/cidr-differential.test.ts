/**
 * lib/net/cidr.ts against ipaddr.js (tests only; the proxy does not load it) over generated and
 * edge-case inputs. Where both accept, they agree on the address, the network of a range and
 * whether a range contains an address. Where they disagree, the input must fall under one of the
 * deliberate differences listed in DIFFERENCES, and each of those must actually occur.
 */
import assert from "node:assert/strict";
import ipaddr from "ipaddr.js";
import { CidrSet, parseCidr, parseIp } from "../../../lib/net/cidr.ts";

type Family = 4 | 6;
interface Seen {
  family: Family;
  address: string;
}

/** A small seeded generator (mulberry32), so every run checks the same inputs. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** ipaddr.js's reading: IPv4-mapped folded to IPv4, as lib/net does; the zone id dropped. */
function theirs(text: string): Seen | null {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.parse(text);
  } catch {
    return null;
  }
  if (addr.kind() === "ipv6") {
    const v6 = addr as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return { family: 4, address: v6.toIPv4Address().toString() };
    return { family: 6, address: v6.toRFC5952String().replace(/%.*$/, "") };
  }
  return { family: 4, address: addr.toString() };
}

function ours(text: string): Seen | null {
  const p = parseIp(text);
  return p && { family: p.family, address: p.address };
}

const DECIMAL_QUAD = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*)){3}$/;

/** The deliberate differences, each with the inputs it covers. */
const DIFFERENCES: {
  why: string;
  covers(text: string, us: Seen | null, them: Seen | null): boolean;
}[] = [
  {
    why: "IPv4 other than four decimal parts (short `127.1`, hex `0x7f.0.0.1`, octal-looking " +
      "`010.0.0.1`, a bare number) is refused: X-Forwarded-For readers disagree on these forms",
    covers: (text, us, them) => !us && them?.family === 4 && !text.includes(":"),
  },
  {
    why: "an IPv4 tail with a leading zero inside IPv6 (`::ffff:01.2.3.4`) is refused, as the " +
      "same quad alone would be",
    covers: (text, us, them) =>
      !us && !!them && /:[^:]*\.[^:]*$/.test(text) &&
      !DECIMAL_QUAD.test(text.slice(text.lastIndexOf(":") + 1).replace(/%.*$/, "")),
  },
  {
    why: "IPv4-compatible `::a.b.c.d` stays IPv6 (`::102:304`, RFC 4291 §2.5.5.1); ipaddr.js " +
      "reads it as IPv4-mapped. Only `::ffff:a.b.c.d` is folded to IPv4 (§2.5.5.2)",
    covers: (_text, us, them) =>
      us?.family === 6 && them?.family === 4 &&
      /^::(([0-9a-f]{1,4}:)?[0-9a-f]{1,4})?$/.test(us.address),
  },
  {
    why: "`[v6]` and `v6%zone` are accepted and the decoration dropped (a socket peer or a URL " +
      "host carries them); ipaddr.js takes neither brackets nor every RFC 4007 zone spelling",
    covers: (text, us, them) => !!us && !them && (text.startsWith("[") || text.includes("%")),
  },
  {
    why: "over 128 characters or a zone id over 64 characters is refused: no real address is " +
      "that long, and a forwarded header must not make the parser work for nothing",
    covers: (text, us, them) => !us && !!them && (text.length > 128 || /%.{65,}$/.test(text)),
  },
];

const CIDR_DIFFERENCES: {
  why: string;
  covers(text: string, us: boolean, them: boolean): boolean;
}[] = [
  {
    why: "a bare address is a range of one (/32, /128): lists in the wild contain them",
    covers: (text, us, them) => us && !them && !text.includes("/"),
  },
  {
    why:
      "a prefix length with a leading zero (`/08`) is refused: it is not how RFC 4632 writes one",
    covers: (text, us, them) => !us && them && /\/0[0-9]/.test(text),
  },
  {
    why: "brackets and zone ids are refused in a range: a zone names one link, a range many hosts",
    covers: (text, us, them) => !us && them && /[[\]%]/.test(text.split("/")[0]),
  },
  {
    why: "the address part follows the address rules above (no short or octal IPv4)",
    covers: (text, us, them) => {
      const addr = text.split("/")[0];
      return !us && them && !parseIp(addr) && theirs(addr) !== null;
    },
  },
];

function v4(next: () => number): string {
  return Array.from({ length: 4 }, () => Math.floor(next() * 256)).join(".");
}

/** IPv6 text in the many ways people write it: `::` anywhere, any case, padding, IPv4 tails. */
function v6(next: () => number, tails = true): string {
  const groups = Array.from(
    { length: 8 },
    () => next() < 0.4 ? 0 : Math.floor(next() * (next() < 0.5 ? 0x10000 : 0x100)),
  );
  const style = (g: number) => {
    let s = g.toString(16);
    if (next() < 0.2) s = s.padStart(4, "0");
    return next() < 0.3 ? s.toUpperCase() : s;
  };
  let words = groups.map(style);
  if (tails && next() < 0.15) {
    // An IPv4 tail, sometimes as an IPv4-mapped address.
    if (next() < 0.5) words = ["0", "0", "0", "0", "0", "ffff"].concat(words.slice(6));
    words = words.slice(0, 6).concat(
      `${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${groups[7] & 255}`,
    );
  }
  if (next() < 0.6) {
    const start = Math.floor(next() * words.length);
    const end = start + Math.floor(next() * (words.length - start + 1));
    const text = `${words.slice(0, start).join(":")}::${words.slice(end).join(":")}`;
    // `::` stands for at least one group; squeezing none is a typo both must refuse.
    if (end > start) return text;
  }
  return words.join(":");
}

function mutate(text: string, next: () => number): string {
  const at = Math.floor(next() * (text.length + 1));
  const alphabet = "0123456789abcdefABCDEFx:.%[]/ -+";
  const ch = alphabet[Math.floor(next() * alphabet.length)];
  switch (Math.floor(next() * 4)) {
    case 0:
      return text.slice(0, at) + text.slice(at + 1);
    case 1:
      return text.slice(0, at) + ch + text.slice(at);
    case 2:
      return text.slice(0, at) + ch + text.slice(at + 1);
    default:
      return text + text.slice(at);
  }
}

const EDGE_CASES = [
  "",
  "0.0.0.0",
  "255.255.255.255",
  "256.1.1.1",
  "1.2.3",
  "1.2.3.4.5",
  "01.2.3.4",
  "1.2.3.04",
  "0x7f.0.0.1",
  "0x7f000001",
  "127.1",
  "2130706433",
  "1.2.3.-1",
  "+1.2.3.4",
  "1e0.2.3.4",
  "١.٢.٣.٤",
  " 1.2.3.4",
  "1.2.3.4 ",
  "1.2.3.4:80",
  "[1.2.3.4]",
  "1.2.3.4%eth0",
  "::",
  ":::",
  "::1",
  "1::",
  "1::2::3",
  "::ffff:1.2.3.4",
  "::FFFF:1.2.3.4",
  "::ffff:0102:0304",
  "::ffff:01.2.3.4",
  "::1.2.3.4",
  "::0:1.2.3.4",
  "1::1.2.3.4",
  "1:2:3:4:5:6:1.2.3.4",
  "1:2:3:4:5:6:7:1.2.3.4",
  "::1.2.3.4:5",
  "1:2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7:8:9",
  "1:2:3:4:5:6:7::",
  "::2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7:8::",
  "::1:2:3:4:5:6:7:8",
  "FFFF::",
  "0000:0000::1",
  "00000::1",
  "fe80::1%eth0",
  "fe80::1%25",
  "fe80::1%",
  "fe80::1%e/th",
  "[::1]",
  "[::1]:80",
  "[fe80::1%eth0]",
  "[::1",
  "::1]",
  "2001:db8::1",
  "2001:DB8:0:0:1:0:0:1",
  "2001:db8:0:0:1::1",
  `${"0:".repeat(7)}${"0".repeat(130)}`,
  `fe80::1%${"a".repeat(65)}`,
];

Deno.test("net vs ipaddr.js: where both read an address they agree; every difference is deliberate", () => {
  const next = random(20260717);
  const inputs = [...EDGE_CASES];
  for (let i = 0; i < 3000; i++) inputs.push(v4(next), v6(next));
  for (let i = 0; i < 4000; i++) {
    const base = inputs[Math.floor(next() * inputs.length)];
    inputs.push(mutate(base, next));
  }
  let agreed = 0;
  const unexplained: string[] = [];
  const used = new Set<string>();
  for (const text of new Set(inputs)) {
    const us = ours(text), them = theirs(text);
    if (us && them && us.family === them.family && us.address === them.address) agreed++;
    else if (!us && !them) continue;
    else {
      const rule = DIFFERENCES.find((d) => d.covers(text, us, them));
      if (rule) used.add(rule.why);
      else unexplained.push(`${JSON.stringify(text)}: ours ${us?.address} theirs ${them?.address}`);
    }
  }
  assert.deepEqual(unexplained, []);
  assert.ok(agreed > 5000, `only ${agreed} addresses read alike`);
  assert.deepEqual(DIFFERENCES.filter((d) => !used.has(d.why)).map((d) => d.why), []);
});

/** ipaddr.js's network address of a range, in lib/net's canonical text, or null. */
function theirsNetwork(text: string): string | null {
  try {
    const [addr, bits] = ipaddr.parseCIDR(text);
    const network = addr.kind() === "ipv4"
      ? ipaddr.IPv4.networkAddressFromCIDR(text).toString()
      : ipaddr.IPv6.networkAddressFromCIDR(text).toRFC5952String();
    return `${network}/${bits}`;
  } catch {
    return null;
  }
}

function theirsContains(range: string, ip: string): boolean {
  const [net, bits] = ipaddr.parseCIDR(range);
  const addr = ipaddr.process(ip);
  return addr.kind() === net.kind() && addr.match([net, bits] as never);
}

Deno.test("net vs ipaddr.js: ranges have the same network and contain the same addresses", () => {
  const next = random(7);
  const ranges: string[] = ["0.0.0.0/0", "::/0", "10.1.2.3/8", "2001:db8::1/32", "1.2.3.4/32"];
  for (let i = 0; i < 600; i++) {
    ranges.push(`${v4(next)}/${Math.floor(next() * 33)}`);
    // No IPv4 tails here: a mapped range becomes an IPv4 range in lib/net by design.
    ranges.push(`${v6(next, false)}/${Math.floor(next() * 129)}`);
  }
  let compared = 0;
  let inside = 0;
  for (const range of ranges) {
    const cidr = parseCidr(range);
    assert.equal(cidr.text, theirsNetwork(range), range);
    const set = new CidrSet([cidr]);
    // Addresses near the range (sharing its leading bits) and anywhere.
    const probes = [v4(next), v6(next, false), cidr.network.address];
    for (const ip of probes) {
      if (!parseIp(ip) || theirs(ip) === null) continue;
      compared++;
      const ourAnswer = set.has(ip);
      if (ourAnswer) inside++;
      assert.equal(ourAnswer, theirsContains(range, ip), `${range} ∋ ${ip}`);
    }
  }
  assert.ok(compared > 2000 && inside > 1200, `${compared} compared, ${inside} inside`);
});

Deno.test("net vs ipaddr.js: range syntax differs only where lib/net means to", () => {
  const next = random(99);
  const inputs = [
    "1.2.3.4",
    "::1",
    "1.2.3.4/08",
    "::/000",
    "127.1/8",
    "010.0.0.0/8",
    "1.2.3.4/33",
    "::/129",
    "1.2.3.4/",
    "/8",
    "1.2.3.4/8/8",
    "1.2.3.4/ 8",
    "1.2.3.4/+8",
    "fe80::%eth0/64",
  ];
  for (let i = 0; i < 2000; i++) {
    const base = next() < 0.5
      ? `${v4(next)}/${Math.floor(next() * 33)}`
      : `${v6(next, false)}/${Math.floor(next() * 129)}`;
    inputs.push(next() < 0.5 ? base : mutate(base, next));
  }
  const unexplained: string[] = [];
  const used = new Set<string>();
  for (const text of new Set(inputs)) {
    let us = true;
    try {
      parseCidr(text);
    } catch {
      us = false;
    }
    const them = theirsNetwork(text) !== null;
    if (us === them) continue;
    const rule = CIDR_DIFFERENCES.find((d) => d.covers(text, us, them));
    if (rule) used.add(rule.why);
    else unexplained.push(`${JSON.stringify(text)}: ours ${us} theirs ${them}`);
  }
  assert.deepEqual(unexplained, []);
  assert.deepEqual(CIDR_DIFFERENCES.filter((d) => !used.has(d.why)).map((d) => d.why), []);
});
