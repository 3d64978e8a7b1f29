import assert from "node:assert/strict";
import { NetworkConfigError } from "../../../lib/config/check.ts";
import { createClientIpResolver } from "../../../lib/edge/client-ip.ts";

function h(init: [string, string][] = []): Headers {
  const headers = new Headers();
  // append, not set: repeated lines must reach the resolver as Headers.get joins them.
  for (const [k, v] of init) headers.append(k, v);
  return headers;
}

Deno.test("no trusted proxies: forwarded headers are ignored, the TCP peer is the client", () => {
  for (const opts of [{}, { trustedProxies: [] }, { trustedProxies: undefined }]) {
    const resolve = createClientIpResolver(opts);
    const spoof = h([
      ["x-forwarded-for", "160.79.104.1"],
      ["cf-connecting-ip", "160.79.104.1"],
      ["x-real-ip", "160.79.104.1"],
    ]);
    assert.deepEqual(resolve("198.51.100.9", spoof), {
      ip: "198.51.100.9",
      peer: "198.51.100.9",
      local: false,
    });
    // Even from loopback: with nothing trusted, a local process cannot claim another address.
    assert.deepEqual(resolve("127.0.0.1", spoof), {
      ip: "127.0.0.1",
      peer: "127.0.0.1",
      local: true,
    });
  }
});

Deno.test("the peer is normalised: mapped IPv6 and zone ids", () => {
  const resolve = createClientIpResolver();
  assert.deepEqual(resolve("::ffff:203.0.113.5", h()), {
    ip: "203.0.113.5",
    peer: "203.0.113.5",
    local: false,
  });
  assert.deepEqual(resolve("fe80::1%eth0", h()), { ip: "fe80::1", peer: "fe80::1", local: false });
  // A non-IP peer (e.g. a Unix socket) is passed through untouched and trusts nothing.
  assert.deepEqual(resolve("", h()), { ip: "", peer: "", local: false });
});

Deno.test("tailscale: the single XFF value from a loopback peer is the client", () => {
  const resolve = createClientIpResolver({ trustedProxies: "tailscale" });
  assert.deepEqual(resolve("127.0.0.1", h([["x-forwarded-for", "203.0.113.7"]])), {
    ip: "203.0.113.7",
    peer: "127.0.0.1",
    via: "x-forwarded-for",
    local: false,
  });
  assert.equal(resolve("::1", h([["x-forwarded-for", " 2001:db8::7 "]])).ip, "2001:db8::7");
  assert.equal(
    resolve("::ffff:127.0.0.1", h([["x-forwarded-for", "::ffff:203.0.113.8"]])).ip,
    "203.0.113.8",
  );
  // No header from the tunnel: the peer is the client, but not a local one (see below).
  assert.deepEqual(resolve("127.0.0.1", h()), { ip: "127.0.0.1", peer: "127.0.0.1", local: false });
});

Deno.test("tailscale: XFF from a non-loopback peer is ignored (spoofing)", () => {
  const resolve = createClientIpResolver({ trustedProxies: "tailscale" });
  const r = resolve("198.51.100.2", h([["x-forwarded-for", "160.79.104.1"]]));
  assert.deepEqual(r, { ip: "198.51.100.2", peer: "198.51.100.2", local: false });
});

Deno.test("tailscale: several XFF values mean tailscaled did not write it: use the peer", () => {
  const resolve = createClientIpResolver({ trustedProxies: "tailscale" });
  const comma = resolve("127.0.0.1", h([["x-forwarded-for", "160.79.104.1, 203.0.113.7"]]));
  assert.deepEqual(comma, { ip: "127.0.0.1", peer: "127.0.0.1", local: false });
  const lines = resolve(
    "127.0.0.1",
    h([["x-forwarded-for", "160.79.104.1"], ["x-forwarded-for", "203.0.113.7"]]),
  );
  assert.deepEqual(lines, { ip: "127.0.0.1", peer: "127.0.0.1", local: false });
  // Garbage or an empty value is not believed either.
  for (const bad of ["", "unknown", "1.2.3.4:5678", "010.0.0.1", "_hidden"]) {
    assert.equal(resolve("127.0.0.1", h([["x-forwarded-for", bad]])).ip, "127.0.0.1", bad);
  }
});

Deno.test("ngrok: the rightmost XFF value is the client; left entries are the caller's", () => {
  const resolve = createClientIpResolver({ trustedProxies: "ngrok" });
  const r = resolve("127.0.0.1", h([["x-forwarded-for", "160.79.104.1, 10.0.0.1, 203.0.113.9"]]));
  assert.deepEqual(r, {
    ip: "203.0.113.9",
    peer: "127.0.0.1",
    via: "x-forwarded-for",
    local: false,
  });
  // A spoofed separate header line comes first; ngrok's appended value is still rightmost.
  const lines = resolve(
    "::1",
    h([["x-forwarded-for", "160.79.104.1"], ["x-forwarded-for", "203.0.113.10"]]),
  );
  assert.equal(lines.ip, "203.0.113.10");
  assert.equal(resolve("127.0.0.1", h([["x-forwarded-for", "203.0.113.11"]])).ip, "203.0.113.11");
});

Deno.test("ngrok: untrusted peer, missing header and garbage all fall back to the peer", () => {
  const resolve = createClientIpResolver({ trustedProxies: "ngrok" });
  const xff = h([["x-forwarded-for", "160.79.104.1"]]);
  assert.deepEqual(resolve("198.51.100.3", xff), {
    ip: "198.51.100.3",
    peer: "198.51.100.3",
    local: false,
  });
  assert.equal(resolve("127.0.0.1", h()).ip, "127.0.0.1");
  // Never a value left of garbage.
  for (const bad of ["160.79.104.1, junk", "160.79.104.1,", "160.79.104.1, 1.2.3"]) {
    assert.equal(resolve("127.0.0.1", h([["x-forwarded-for", bad]])).ip, "127.0.0.1", bad);
  }
});

Deno.test("cloudflare: CF-Connecting-IP is the client and XFF is never used", () => {
  const resolve = createClientIpResolver({ trustedProxies: "cloudflare" });
  const r = resolve(
    "127.0.0.1",
    h([["x-forwarded-for", "160.79.104.1, 203.0.113.20"], ["cf-connecting-ip", "203.0.113.20"]]),
  );
  assert.deepEqual(r, {
    ip: "203.0.113.20",
    peer: "127.0.0.1",
    via: "cf-connecting-ip",
    local: false,
  });
  // XFF alone (whatever its order) is not believed.
  const xffOnly = resolve("127.0.0.1", h([["x-forwarded-for", "160.79.104.1"]]));
  assert.deepEqual(xffOnly, { ip: "127.0.0.1", peer: "127.0.0.1", local: false });
  assert.equal(
    resolve("::1", h([["cf-connecting-ip", "2001:db8::20"]])).ip,
    "2001:db8::20",
  );
});

Deno.test("cloudflare: spoofing attempts fall back to the peer", () => {
  const resolve = createClientIpResolver({ trustedProxies: "cloudflare" });
  // Sent straight to a non-loopback listener.
  const direct = resolve("198.51.100.4", h([["cf-connecting-ip", "160.79.104.1"]]));
  assert.deepEqual(direct, { ip: "198.51.100.4", peer: "198.51.100.4", local: false });
  // Two header lines cannot both be Cloudflare's.
  const two = resolve(
    "127.0.0.1",
    h([["cf-connecting-ip", "160.79.104.1"], ["cf-connecting-ip", "203.0.113.21"]]),
  );
  assert.equal(two.ip, "127.0.0.1");
  assert.equal(resolve("127.0.0.1", h([["cf-connecting-ip", "nope"]])).ip, "127.0.0.1");
});

Deno.test("CIDR list: walk right to left skipping trusted hops", () => {
  const resolve = createClientIpResolver({ trustedProxies: ["10.0.0.0/8", "2001:db8:aa::/48"] });
  const r = resolve(
    "10.0.0.1",
    h([["x-forwarded-for", "160.79.104.1, 203.0.113.30, 10.1.1.1, 2001:db8:aa::5"]]),
  );
  assert.deepEqual(r, {
    ip: "203.0.113.30",
    peer: "10.0.0.1",
    via: "x-forwarded-for",
    local: false,
  });
  // Never the leftmost blindly: the spoofed 160.79.104.1 is left of the real client.
  assert.notEqual(r.ip, "160.79.104.1");
});

Deno.test("CIDR list: untrusted peer ignores the header; missing header gives the peer", () => {
  const resolve = createClientIpResolver({ trustedProxies: ["10.0.0.0/8"] });
  const xff = h([["x-forwarded-for", "160.79.104.1"]]);
  assert.deepEqual(resolve("203.0.113.31", xff), {
    ip: "203.0.113.31",
    peer: "203.0.113.31",
    local: false,
  });
  assert.deepEqual(resolve("10.0.0.1", h()), { ip: "10.0.0.1", peer: "10.0.0.1", local: false });
  // Loopback is not implied by a CIDR list.
  assert.equal(resolve("127.0.0.1", xff).ip, "127.0.0.1");
});

Deno.test("CIDR list: all hops trusted gives the leftmost parsed one", () => {
  const resolve = createClientIpResolver({ trustedProxies: ["10.0.0.0/8"] });
  const r = resolve("10.0.0.1", h([["x-forwarded-for", "10.9.9.9, 10.2.2.2"]]));
  assert.equal(r.ip, "10.9.9.9");
  assert.equal(r.via, "x-forwarded-for");
});

Deno.test("CIDR list: garbage stops the walk at the last good hop", () => {
  const resolve = createClientIpResolver({ trustedProxies: ["10.0.0.0/8"] });
  const cases: [string, string][] = [
    // garbage right next to the peer: nothing beyond the peer is believable
    ["160.79.104.1, junk", "10.0.0.1"],
    ["160.79.104.1, ", "10.0.0.1"],
    // garbage behind a trusted hop: stop at that hop, never the spoofed value further left
    ["160.79.104.1, 1.2.3, 10.5.5.5", "10.5.5.5"],
    ["160.79.104.1, unknown, 10.5.5.5, 10.6.6.6", "10.5.5.5"],
    // garbage left of the client does not matter: the walk already stopped
    ["junk, 203.0.113.40, 10.5.5.5", "203.0.113.40"],
    ["[::1]:80, 203.0.113.41", "203.0.113.41"],
  ];
  for (const [xff, want] of cases) {
    assert.equal(resolve("10.0.0.1", h([["x-forwarded-for", xff]])).ip, want, xff);
  }
});

Deno.test("CIDR list: multiple header lines are walked as one list; results are normalised", () => {
  const resolve = createClientIpResolver({ trustedProxies: ["10.0.0.0/8", "::1"] });
  const r = resolve(
    "::1",
    h([["x-forwarded-for", "160.79.104.1"], ["x-forwarded-for", "::ffff:203.0.113.50, 10.0.0.2"]]),
  );
  assert.equal(r.ip, "203.0.113.50");
  assert.equal(r.peer, "::1");
  const zone = resolve("10.0.0.1", h([["x-forwarded-for", "fe80::9%eth0"]]));
  assert.equal(zone.ip, "fe80::9");
  const mappedPeer = resolve("::ffff:10.0.0.1", h([["x-forwarded-for", "203.0.113.51"]]));
  assert.deepEqual(mappedPeer, {
    ip: "203.0.113.51",
    peer: "10.0.0.1",
    via: "x-forwarded-for",
    local: false,
  });
});

Deno.test("CIDR list: a custom clientIpHeader is walked instead of XFF", () => {
  const resolve = createClientIpResolver({
    trustedProxies: ["127.0.0.1"],
    clientIpHeader: "X-Real-IP",
  });
  const r = resolve(
    "127.0.0.1",
    h([["x-real-ip", "203.0.113.60"], ["x-forwarded-for", "160.79.104.1"]]),
  );
  assert.deepEqual(r, { ip: "203.0.113.60", peer: "127.0.0.1", via: "x-real-ip", local: false });
  assert.equal(resolve("127.0.0.1", h([["x-forwarded-for", "160.79.104.1"]])).ip, "127.0.0.1");
});

Deno.test("presets ignore clientIpHeader", () => {
  const resolve = createClientIpResolver({ trustedProxies: "ngrok", clientIpHeader: "x-real-ip" });
  const r = resolve(
    "127.0.0.1",
    h([["x-real-ip", "160.79.104.1"], ["x-forwarded-for", "1.2.3.4"]]),
  );
  assert.equal(r.ip, "1.2.3.4");
});

Deno.test("config errors name the offending key", () => {
  const cases: [unknown, string | undefined, string][] = [
    ["tailscal", undefined, "network.trustedProxies"],
    ["Cloudflare", undefined, "network.trustedProxies"],
    [42, undefined, "network.trustedProxies"],
    [["10.0.0.0/8", "10.0.0.0/33"], undefined, "network.trustedProxies[1]"],
    [["10.0.0.0/8", 7], undefined, "network.trustedProxies[1]"],
    [["tailscale"], undefined, "network.trustedProxies[0]"],
    [["0.0.0.0/0"], undefined, "network.trustedProxies[0]"],
    [["::/0"], undefined, "network.trustedProxies[0]"],
    [["10.0.0.0/8"], "x forwarded for", "network.clientIpHeader"],
    [["10.0.0.0/8"], "Forwarded", "network.clientIpHeader"],
    [["10.0.0.0/8"], "", "network.clientIpHeader"],
  ];
  for (const [trustedProxies, clientIpHeader, path] of cases) {
    assert.throws(
      () =>
        createClientIpResolver({
          trustedProxies: trustedProxies as string[],
          clientIpHeader,
        }),
      (e: unknown) => {
        assert.ok(e instanceof NetworkConfigError, `${JSON.stringify(trustedProxies)}`);
        assert.equal(e.path, path);
        assert.ok(e.message.startsWith(`${path}: `), e.message);
        return true;
      },
    );
  }
  assert.throws(
    () => createClientIpResolver({ trustedProxies: ["10.0.0.0/33"] }),
    { message: "network.trustedProxies[0]: 10.0.0.0/33: prefix length out of range" },
  );
  assert.throws(
    () => createClientIpResolver({ trustedProxies: "nginx" }),
    /unknown preset "nginx" \(expected tailscale, ngrok, cloudflare or a list of CIDRs\)/,
  );
});

Deno.test("local: only a loopback peer that is not a trusted proxy; a trusted tunnel peer never is, whatever its header", () => {
  const none = createClientIpResolver();
  for (const peer of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) {
    assert.equal(none(peer, h()).local, true, peer);
  }
  for (const peer of ["198.51.100.9", "10.0.0.1", "", "not-an-ip"]) {
    assert.equal(none(peer, h()).local, false, peer);
  }
  // Missing, malformed, forged-local or real headers from a trusted loopback peer.
  const headers: [string, Headers][] = [
    ["missing", h()],
    ["malformed", h([["x-forwarded-for", "junk"], ["cf-connecting-ip", "junk"]])],
    ["two values", h([["x-forwarded-for", "203.0.113.9, 203.0.113.10"]])],
    ["forged loopback", h([["x-forwarded-for", "127.0.0.1"], ["cf-connecting-ip", "127.0.0.1"]])],
    ["a client", h([["x-forwarded-for", "203.0.113.9"], ["cf-connecting-ip", "203.0.113.9"]])],
  ];
  for (const tp of ["tailscale", "ngrok", "cloudflare", ["127.0.0.1/32", "::1/128"]]) {
    const resolve = createClientIpResolver({ trustedProxies: tp });
    for (const [what, hs] of headers) {
      for (const peer of ["127.0.0.1", "::1"]) {
        assert.equal(resolve(peer, hs).local, false, `${tp} ${what} from ${peer}`);
      }
    }
  }
  // A CIDR list that does not name loopback leaves local callers local.
  const lan = createClientIpResolver({ trustedProxies: ["10.0.0.0/8"] });
  assert.equal(lan("127.0.0.1", h([["x-forwarded-for", "203.0.113.9"]])).local, true);
  assert.equal(lan("10.0.0.1", h()).local, false);
});
