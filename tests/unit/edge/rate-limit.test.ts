/**
 * The rate limiter's keying and memory bound: IPv6 clients share a bucket per network
 * (`ipv6Prefix`, /64 by default), and a full table never evicts a tracked client's bucket.
 */
import assert from "node:assert/strict";
import { RateLimiter } from "../../../lib/edge/rate-limit.ts";
import { networkKey } from "../../../lib/net/cidr.ts";

const RATE = { burst: 2, periodMs: 60_000 };

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => t += ms };
}

/** Spends `key`'s burst; the next take is refused. */
function exhaust(limiter: RateLimiter, ip: string): void {
  for (let i = 0; i < RATE.burst; i++) assert.ok(limiter.take(ip).ok, `${ip} #${i}`);
  assert.equal(limiter.take(ip).ok, false, `${ip} over the burst`);
}

Deno.test("networkKey: IPv4 is the address, IPv6 the network of the prefix, garbage itself", () => {
  assert.equal(networkKey("203.0.113.9", 64), "203.0.113.9");
  assert.equal(networkKey("::ffff:203.0.113.9", 64), "203.0.113.9");
  assert.equal(networkKey("2001:db8:0:1::5", 64), "2001:db8:0:1::/64");
  assert.equal(networkKey("2001:DB8:0:1:ffff:1:2:3", 64), "2001:db8:0:1::/64");
  assert.equal(networkKey("2001:db8:0:1ff::5", 56), "2001:db8:0:100::/56");
  assert.equal(networkKey("2001:db8::5", 128), "2001:db8::5");
  assert.equal(networkKey("not-an-ip", 64), "not-an-ip");
});

Deno.test("rate limit: addresses in one IPv6 /64 share one bucket; another /64 and IPv4 do not", () => {
  const limiter = new RateLimiter(RATE, clock());
  assert.ok(limiter.take("2001:db8:0:1::1").ok);
  assert.ok(limiter.take("2001:db8:0:1::2").ok);
  assert.equal(limiter.take("2001:db8:0:1:abcd::3").ok, false, "third address, same /64");
  assert.equal(limiter.check("2001:db8:0:1::99").ok, false);
  assert.ok(limiter.take("2001:db8:0:2::1").ok, "the next /64");
  exhaust(limiter, "203.0.113.1");
  assert.ok(limiter.take("203.0.113.2").ok, "IPv4 stays per address");
});

Deno.test("rate limit: ipv6Prefix sets the network size", () => {
  const wide = new RateLimiter(RATE, { ...clock(), ipv6Prefix: 48 });
  assert.ok(wide.take("2001:db8:0:1::1").ok);
  assert.ok(wide.take("2001:db8:0:2::1").ok);
  assert.equal(wide.take("2001:db8:0:3::1").ok, false, "one /48");
  const exact = new RateLimiter(RATE, { ...clock(), ipv6Prefix: 128 });
  for (let i = 1; i <= 5; i++) assert.ok(exact.take(`2001:db8::${i}`).ok, "one per address");
});

Deno.test("rate limit: a full table sends new clients to one overflow bucket and never flushes a tracked one", () => {
  const c = clock();
  const limiter = new RateLimiter(RATE, { ...c, maxKeys: 3 });
  exhaust(limiter, "203.0.113.1");
  assert.ok(limiter.take("203.0.113.2").ok);
  assert.ok(limiter.take("2001:db8:0:1::1").ok);
  assert.equal(limiter.size, 3);
  // A caller with many addresses: each new one would once have evicted the oldest bucket.
  const flood = Array.from(
    { length: 50 },
    (_, i) => limiter.take(`2001:db8:1:${i.toString(16)}::1`),
  );
  assert.equal(limiter.size, 3);
  assert.deepEqual(flood.slice(0, RATE.burst).map((v) => v.ok), [true, true], "overflow burst");
  assert.ok(flood.slice(RATE.burst).every((v) => !v.ok), "then the overflow bucket is spent");
  assert.equal(limiter.takeOverflowed(), 50);
  assert.equal(limiter.takeOverflowed(), 0);
  // The attacked client is still limited; the tracked clients keep their own buckets.
  assert.equal(limiter.take("203.0.113.1").ok, false);
  assert.equal(limiter.check("203.0.113.1").ok, false);
  assert.ok(limiter.take("203.0.113.2").ok);
  assert.equal(limiter.check("198.51.100.1").ok, false, "check sees the overflow bucket");
});

Deno.test("rate limit: a full table makes room only by forgetting buckets that refilled", () => {
  const c = clock();
  const limiter = new RateLimiter(RATE, { ...c, maxKeys: 2 });
  exhaust(limiter, "203.0.113.1");
  assert.ok(limiter.take("203.0.113.2").ok);
  c.advance(RATE.periodMs / 4);
  assert.ok(limiter.take("203.0.113.3").ok, "overflow");
  assert.equal(limiter.size, 2, "nothing had refilled");
  c.advance(RATE.periodMs);
  assert.ok(limiter.take("203.0.113.4").ok);
  assert.equal(limiter.size, 1, "refilled buckets were swept to make room");
  assert.equal(limiter.takeOverflowed(), 1);
});
