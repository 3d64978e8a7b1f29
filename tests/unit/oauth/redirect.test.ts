import assert from "node:assert/strict";
import {
  appendParams,
  CHATGPT_CONNECTOR_PREFIX,
  REDIRECT_PRESETS,
  RedirectPolicy,
} from "../../../lib/oauth/redirect.ts";
import {
  isCustomScheme,
  isLoopback,
  parseRedirectUri,
  RedirectUriError,
} from "../../../lib/net/redirect-uri.ts";
import { OAuthConfigError } from "../../../lib/config/check.ts";

const CURSOR = "cursor://anysphere.cursor-mcp/oauth/callback";
const matches = RedirectPolicy.matches;

function refused(policy: RedirectPolicy, uri: string, reason?: RegExp) {
  assert.throws(() => policy.checkRegistration(uri), (e) => {
    assert.ok(e instanceof RedirectUriError, `${JSON.stringify(uri)} threw ${e}`);
    if (reason) assert.match(e.reason, reason, JSON.stringify(uri));
    return true;
  }, `${JSON.stringify(uri)} should be refused`);
}

Deno.test("registration: every preset is accepted by default", () => {
  const policy = new RedirectPolicy();
  assert.deepEqual([...REDIRECT_PRESETS].sort(), [
    "https://chatgpt.com/connector_platform_oauth_redirect",
    "https://claude.ai/api/mcp/auth_callback",
    "https://claude.com/api/mcp/auth_callback",
  ]);
  for (const uri of REDIRECT_PRESETS) policy.checkRegistration(uri);
  // Presets are exact: near misses are not on the list.
  refused(policy, "https://claude.ai/api/mcp/auth_callback/", /allow-list/);
  refused(policy, "https://CLAUDE.ai/api/mcp/auth_callback", /allow-list/);
  refused(policy, "https://claude.ai/api/mcp/auth_callback?x=1", /allow-list/);
  refused(policy, "https://claude.ai:443/api/mcp/auth_callback", /allow-list/);
  refused(policy, "https://claude.ai.evil.example/api/mcp/auth_callback", /allow-list/);
});

Deno.test("registration: the ChatGPT connector prefix accepts one conservative callback id", () => {
  const policy = new RedirectPolicy();
  assert.equal(CHATGPT_CONNECTOR_PREFIX, "https://chatgpt.com/connector/oauth/");
  policy.checkRegistration("https://chatgpt.com/connector/oauth/AbC_12-xyz");
  policy.checkRegistration(`https://chatgpt.com/connector/oauth/${"a".repeat(128)}`);
  for (
    const bad of [
      "https://chatgpt.com/connector/oauth/",
      `https://chatgpt.com/connector/oauth/${"a".repeat(129)}`,
      "https://chatgpt.com/connector/oauth/abc/def",
      "https://chatgpt.com/connector/oauth/abc?x=1",
      "https://chatgpt.com/connector/oauth/a.b",
      "https://chatgpt.com/connector/oauth/%2e%2e",
      "https://chatgpt.com/connector/oauth/../../evil",
      "https://chatgpt.com/connector/oauthabc",
      "https://chatgpt.com.evil.example/connector/oauth/abc",
      "http://chatgpt.com/connector/oauth/abc",
    ]
  ) refused(policy, bad);
});

Deno.test("matching: the ChatGPT prefix is not a prefix at authorization time", () => {
  const registered = "https://chatgpt.com/connector/oauth/abc123";
  assert.equal(matches(registered, registered), true);
  assert.equal(matches(registered, "https://chatgpt.com/connector/oauth/abc124"), false);
  assert.equal(matches(registered, "https://chatgpt.com/connector/oauth/abc1234"), false);
  assert.equal(matches(registered, "https://chatgpt.com/connector/oauth/abc123/x"), false);
  assert.equal(matches("https://chatgpt.com/connector/oauth/", registered), false);
});

Deno.test("registration: loopback on any port and path, but not any host", () => {
  const policy = new RedirectPolicy();
  for (
    const ok of [
      "http://localhost:6274/oauth/callback",
      "http://localhost:6274/oauth/callback/debug",
      "http://localhost/callback",
      "http://127.0.0.1:53682/callback",
      "http://127.1.2.3:9/x?y=z",
      "http://[::1]:8080/cb",
      "http://localhost:1",
    ]
  ) {
    policy.checkRegistration(ok);
    assert.equal(isLoopback(ok), true, ok);
  }
  for (
    const bad of [
      "http://evil.example/cb",
      "http://localhost.evil.example/cb",
      "http://localhost./cb",
      "http://sub.localhost/cb",
      "http://128.0.0.1/cb",
      "http://10.0.0.1/cb",
      "http://0.0.0.0/cb",
      "http://[::2]/cb",
      "http://127.1/cb", // parses to 127.0.0.1, but the text is not the literal
      "http://2130706433/cb",
      "http://0x7f.0.0.1/cb",
      "http://[0:0:0:0:0:0:0:1]/cb",
      "http://[::ffff:127.0.0.1]/cb",
      "http://%6c%6fcalhost/cb",
    ]
  ) {
    refused(policy, bad);
    assert.equal(isLoopback(bad), false, bad);
  }
  refused(policy, "http://evil.example/cb", /loopback/);
  // https on a loopback host is plain https: not a preset, so not on the default list.
  refused(policy, "https://localhost:8443/cb", /allow-list/);
  assert.equal(isLoopback("https://localhost:8443/cb"), false);
});

Deno.test("registration: https on other hosts only when configured", () => {
  refused(new RedirectPolicy(), "https://evil.example/cb", /allow-list/);
  const policy = new RedirectPolicy({ extra: ["https://app.example.com/cb"] });
  policy.checkRegistration("https://app.example.com/cb");
  refused(policy, "https://app.example.com/cb/", /allow-list/);
  refused(policy, "https://app.example.com/cb?x", /allow-list/);
  refused(policy, "https://evil.example/cb", /allow-list/);
});

Deno.test("parse: dangerous input is refused before and beyond URL parsing", () => {
  const policy = new RedirectPolicy({ extra: [CURSOR] });
  const cases: [string, RegExp][] = [
    ["http://localhost/cb#", /fragment/],
    ["http://localhost/cb#x", /fragment/],
    ["https://claude.ai/api/mcp/auth_callback#", /fragment/],
    ["http://user@localhost/cb", /user name/],
    ["http://user:pw@localhost/cb", /user name/],
    ["http://@localhost/cb", /user name/],
    ["https://claude.ai@evil.example/api/mcp/auth_callback", /user name/],
    ["JaVaScRiPt:alert(1)", /javascript: scheme/],
    ["javascript://localhost/%0aalert(1)", /javascript: scheme/],
    ["data:text/html,<script>alert(1)</script>", /data: scheme/],
    ["DATA:text/html;base64,PHNjcmlwdD4=", /data: scheme/],
    ["file:///etc/passwd", /file: scheme/],
    ["FiLe://localhost/etc/passwd", /file: scheme/],
    ["vbscript:msgbox(1)", /vbscript: scheme/],
    ["VBScript:msgbox(1)", /vbscript: scheme/],
    [" http://localhost/cb", /leading or trailing whitespace/],
    ["http://localhost/cb ", /leading or trailing whitespace/],
    ["http://localhost/cb\n", /leading or trailing whitespace/],
    ["\thttp://localhost/cb", /leading or trailing whitespace/],
    ["http://local\thost/cb", /control character/],
    ["http://localhost/c\nb", /control character/],
    ["http://localhost/c\rb", /control character/],
    ["http://localhost/cb\x00", /control character/],
    ["http://localhost/c\x00b", /control character/],
    ["java\tscript:alert(1)", /control character/],
    ["http://localhost/c b", /whitespace/],
    ["http://localhost/c\u00a0b", /whitespace/],
    ["http://localhost/caf\u00e9", /non-ASCII/],
    ["https://claude.ai\\@evil.example/x", /backslash/],
    ["/callback", /absolute/],
    ["//evil.example/cb", /absolute/],
    ["callback", /absolute/],
    ["", /empty/],
    ["https:claude.ai/api/mcp/auth_callback", /https:\/\/ followed by a host/],
    ["https:///claude.ai/api/mcp/auth_callback", /https:\/\/ followed by a host/],
    ["https://claude%2eai/api/mcp/auth_callback", /canonical/],
    [`http://localhost/${"a".repeat(2100)}`, /longer than/],
  ];
  for (const [uri, reason] of cases) {
    refused(policy, uri, reason);
    assert.throws(() => parseRedirectUri(uri, { allowCustomScheme: true }), RedirectUriError, uri);
    // An exact-match comparison with itself must not rescue a bad URI either.
    assert.equal(matches(uri, uri), false, uri);
  }
  // Dangerous schemes stay refused even if an operator tries to configure them.
  assert.throws(() => new RedirectPolicy({ extra: ["javascript:alert(1)"] }), OAuthConfigError);
});

Deno.test("parse: the raw text is kept; scheme and kind are reported", () => {
  const p = parseRedirectUri("http://localhost:3000/cb?a=b");
  assert.equal(p.raw, "http://localhost:3000/cb?a=b");
  assert.equal(p.kind, "loopback");
  assert.equal(p.scheme, "http");
  assert.equal(parseRedirectUri("https://claude.ai/api/mcp/auth_callback").kind, "https");
  const c = parseRedirectUri(CURSOR, { allowCustomScheme: true });
  assert.equal(c.kind, "custom");
  assert.equal(c.scheme, "cursor");
  assert.throws(() => parseRedirectUri(CURSOR), /custom scheme cursor:/);
});

Deno.test("custom schemes: refused unless configured, then accepted exactly", () => {
  refused(new RedirectPolicy(), CURSOR, /custom scheme/);
  const policy = new RedirectPolicy({ extra: [CURSOR, "com.example.app:/oauth2redirect"] });
  policy.checkRegistration(CURSOR);
  policy.checkRegistration("com.example.app:/oauth2redirect");
  assert.deepEqual(policy.extra, [CURSOR, "com.example.app:/oauth2redirect"]);
  assert.equal(policy.allowsCustomScheme(CURSOR), true);
  assert.equal(policy.allowsCustomScheme("cursor://anysphere.cursor-mcp/other"), false);
  refused(policy, "cursor://anysphere.cursor-mcp/other", /custom scheme/);
  refused(policy, "CURSOR://anysphere.cursor-mcp/oauth/callback", /custom scheme/);
  assert.equal(isCustomScheme(CURSOR), true);
  assert.equal(isCustomScheme("http://localhost/cb"), false);
  assert.equal(isCustomScheme("https://claude.ai/api/mcp/auth_callback"), false);
  assert.equal(isCustomScheme("javascript:alert(1)"), false);
  assert.equal(matches(CURSOR, CURSOR), true);
  assert.equal(matches(CURSOR, "cursor://anysphere.cursor-mcp/oauth/callback/"), false);
});

Deno.test("config: bad oauth.redirectUris entries name their index", () => {
  const cases: [unknown[], string, RegExp][] = [
    [["https://ok.example/cb", "http://evil.example/cb"], "oauth.redirectUris[1]", /loopback/],
    [["https://ok.example/cb#x"], "oauth.redirectUris[0]", /fragment/],
    [[42], "oauth.redirectUris[0]", /string/],
    [["ok", "https://ok.example/cb"], "oauth.redirectUris[0]", /absolute/],
    [[" https://ok.example/cb"], "oauth.redirectUris[0]", /whitespace/],
  ];
  for (const [extra, path, reason] of cases) {
    assert.throws(() => new RedirectPolicy({ extra: extra as string[] }), (e) => {
      assert.ok(e instanceof OAuthConfigError);
      assert.equal(e.path, path);
      assert.match(e.message, new RegExp(`^${path.replace(/[[\].]/g, "\\$&")}: `));
      assert.match(e.message, reason);
      return true;
    });
  }
  assert.throws(
    () => new RedirectPolicy({ extra: "https://x.example/cb" as unknown as string[] }),
    /oauth.redirectUris: must be an array/,
  );
});

Deno.test("matching: exact for non-loopback URIs", () => {
  const reg = "https://claude.ai/api/mcp/auth_callback";
  assert.equal(matches(reg, reg), true);
  for (
    const other of [
      "https://CLAUDE.ai/api/mcp/auth_callback",
      "HTTPS://claude.ai/api/mcp/auth_callback",
      "https://claude.ai/api/mcp/Auth_callback",
      "https://claude.ai/api/mcp/auth_callback/",
      "https://claude.ai/api/mcp/auth_callback?",
      "https://claude.ai/api/mcp/auth_callback?x=1",
      "https://claude.ai/api/mcp/auth_callback#",
      "https://claude.ai/api/mcp/auth_callback#x",
      "https://claude.ai/api/mcp/other",
      "https://claude.ai/api/mcp",
      "https://claude.ai:443/api/mcp/auth_callback",
      "https://claude.ai:8443/api/mcp/auth_callback",
      "https://claude.ai/api/mcp/auth_callback\t",
      "https://claude.ai/api/mcp/auth_\ncallback",
    ]
  ) assert.equal(matches(reg, other), false, other);
  const withQuery = "https://app.example.com/cb?tenant=a";
  assert.equal(matches(withQuery, withQuery), true);
  assert.equal(matches(withQuery, "https://app.example.com/cb?tenant=b"), false);
  assert.equal(matches(withQuery, "https://app.example.com/cb"), false);
  assert.equal(matches(withQuery, "https://app.example.com/cb?tenant=a&x=1"), false);
});

Deno.test("matching: loopback ignores the port and nothing else", () => {
  const reg = "http://localhost:6274/oauth/callback";
  for (
    const same of [
      "http://localhost:6274/oauth/callback",
      "http://localhost:1/oauth/callback",
      "http://localhost:65535/oauth/callback",
      "http://localhost/oauth/callback",
    ]
  ) assert.equal(matches(reg, same), true, same);
  for (
    const other of [
      "http://localhost:6274/oauth/callback/debug",
      "http://localhost:6274/oauth/callback/",
      "http://localhost:6274/oauth/Callback",
      "http://localhost:6274/oauth/callback?x=1",
      "http://localhost:6274/oauth/callback#",
      "http://localhost:6274/oauth/callback#x",
      "http://127.0.0.1:6274/oauth/callback",
      "http://[::1]:6274/oauth/callback",
      "http://LOCALHOST:6274/oauth/callback",
      "HTTP://localhost:6274/oauth/callback",
      "https://localhost:6274/oauth/callback",
      "http://evil.example:6274/oauth/callback",
      "http://user@localhost:6274/oauth/callback",
    ]
  ) assert.equal(matches(reg, other), false, other);
  assert.equal(matches("http://127.0.0.1/cb", "http://127.0.0.1:50000/cb"), true);
  assert.equal(matches("http://127.0.0.1/cb", "http://127.0.0.2:50000/cb"), false);
  assert.equal(matches("http://[::1]:1/cb?a=b", "http://[::1]:2/cb?a=b"), true);
  assert.equal(matches("http://[::1]:1/cb?a=b", "http://[::1]:2/cb?a=c"), false);
  // A port is not a wildcard for anything else, and a non-loopback URI has no port freedom.
  assert.equal(matches("https://app.example.com:1/cb", "https://app.example.com:2/cb"), false);
  assert.equal(matches("http://localhost/", "http://localhost:80"), false);
});

Deno.test("appendParams: keeps the registered query exactly and encodes new values", () => {
  assert.equal(
    appendParams("https://claude.ai/api/mcp/auth_callback", { code: "abc", state: "x y&z" }),
    "https://claude.ai/api/mcp/auth_callback?code=abc&state=x%20y%26z",
  );
  assert.equal(
    appendParams("https://app.example.com/cb?tenant=a+b&x=%20", {
      code: "c",
      iss: "https://mcp.example.com",
    }),
    "https://app.example.com/cb?tenant=a+b&x=%20&code=c&iss=https%3A%2F%2Fmcp.example.com",
  );
  assert.equal(
    appendParams("http://localhost:1/cb?", { error: "access_denied" }),
    "http://localhost:1/cb?error=access_denied",
  );
  assert.equal(
    appendParams("http://localhost:1/cb?a=1&", { code: "c" }),
    "http://localhost:1/cb?a=1&code=c",
  );
  assert.equal(
    appendParams("http://localhost:1/cb?flag", { code: "c" }),
    "http://localhost:1/cb?flag&code=c",
  );
  assert.equal(appendParams(CURSOR, { code: "c" }), `${CURSOR}?code=c`);
  assert.equal(appendParams("http://localhost:1/cb", {}), "http://localhost:1/cb");
  const url = new URL(appendParams("http://localhost:1/cb?keep=1", { state: "ü=&#?" }));
  assert.equal(url.searchParams.get("keep"), "1");
  assert.equal(url.searchParams.get("state"), "ü=&#?");
  assert.throws(() => appendParams("http://localhost:1/cb#frag", { code: "c" }), RedirectUriError);
});
