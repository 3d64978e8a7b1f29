/** The login keys of the config: publicUrl, github, allow, oauth; and their permission flags. */
import assert from "node:assert/strict";
import { ConfigError } from "../../lib/config/check.ts";
import { parseConfigText } from "../../lib/config/load.ts";
import { derivePermissions } from "../../lib/permissions/derive.ts";
import { tunnelAdvice } from "../../lib/config/advice.ts";

const SOURCE = "/srv/mop/config.json";
const servers = { files: { command: "npx", args: ["-y", "server-filesystem", "/srv"] } };
const github = { clientId: "Ov23liABC", clientSecret: "${GITHUB_CLIENT_SECRET}" };
const base = {
  publicUrl: "https://pi.tail1234.ts.net",
  mcpServers: servers,
  github,
  allow: { users: [583231] },
};
const ENV: Record<string, string> = { GITHUB_CLIENT_SECRET: "s3cret" };

function load(config: unknown) {
  return parseConfigText(JSON.stringify(config), { source: SOURCE, env: (n) => ENV[n] });
}

function problems(config: unknown): string[] {
  try {
    load(config);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("a login config normalises publicUrl, GitHub URLs, the allow-list and lifetimes", () => {
  const { config } = load({
    ...base,
    publicUrl: "HTTPS://Pi.Tail1234.ts.net:443/",
    listen: "0.0.0.0:8080",
    allow: { users: ["Octocat", 583231, "42"], orgs: ["Acme"], teams: ["acme/Platform"] },
    oauth: {
      accessTokenTtl: "1h",
      refreshTokenTtl: "7d",
      redirectUris: ["cursor://anysphere.cursor-mcp/oauth/callback"],
    },
  });
  const auth = config.auth!;
  assert.equal(auth.publicUrl, "https://pi.tail1234.ts.net");
  assert.equal(auth.github.webUrl, "https://github.com");
  assert.equal(auth.github.apiUrl, "https://api.github.com");
  assert.equal(auth.github.clientSecret, "s3cret");
  assert.deepEqual(auth.allow, {
    ids: [583231, 42],
    logins: ["octocat"],
    orgs: ["acme"],
    teams: [{ org: "acme", slug: "platform" }],
  });
  assert.equal(auth.oauth.accessTokenTtlMs, 3_600_000);
  assert.equal(auth.oauth.refreshTokenTtlMs, 7 * 86_400_000);
  assert.equal(auth.oauth.grantTtlMs, 90 * 86_400_000);
  assert.equal(config.listen.hostname, "0.0.0.0", "with login, listen may be any address");
});

Deno.test("GitHub Enterprise Server URLs are taken as given", () => {
  const { config } = load({
    ...base,
    github: {
      ...github,
      webUrl: "https://ghe.example.com",
      apiUrl: "https://ghe.example.com/api/v3/",
    },
  });
  assert.equal(config.auth!.github.webUrl, "https://ghe.example.com");
  assert.equal(config.auth!.github.apiUrl, "https://ghe.example.com/api/v3");
});

Deno.test("login config mistakes name their key", () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ ...base, allow: {} }, /^allow: the allow-list is empty/],
    [{ ...base, allow: undefined }, /^allow: the allow-list is empty/],
    [{ ...base, allow: { users: [] } }, /^allow: the allow-list is empty/],
    [{ ...base, publicUrl: undefined }, /^publicUrl: required$/],
    [{ ...base, publicUrl: "http://pi.tail1234.ts.net" }, /^publicUrl: must be https/],
    [{ ...base, publicUrl: "https://x.example/?a=1" }, /^publicUrl: must not contain/],
    [{ ...base, publicUrl: "not a url" }, /^publicUrl: expected an absolute URL/],
    [{ ...base, github: { clientSecret: "x" } }, /^github\.clientId: required$/],
    [
      { ...base, github: { ...github, webUrl: "http://github.example" } },
      /^github\.webUrl: expected an https URL/,
    ],
    [
      { ...base, github: { ...github, clientSecrt: "x" } },
      /^github\.clientSecrt: unknown key \(did you mean "clientSecret"\?\)$/,
    ],
    [
      { ...base, allow: { users: ["bad login!"] } },
      /^allow\.users\[0\]: expected a GitHub login or a numeric user id$/,
    ],
    [
      { ...base, allow: { users: [1], teams: ["acme"] } },
      /^allow\.teams\[0\]: expected "org\/team-slug"$/,
    ],
    [{ ...base, allow: { user: [1] } }, /^allow\.user: unknown key \(did you mean "users"\?\)$/],
    [
      { ...base, oauth: { accessTokenTtl: "forever" } },
      /^oauth\.accessTokenTtl: expected a duration/,
    ],
    [
      { ...base, oauth: { redirectUris: ["http://evil.example/cb"] } },
      /^oauth\.redirectUris\[0\]: /,
    ],
    [
      { ...base, oauth: { clientMetadataHosts: ["https://x.example"] } },
      /^oauth\.clientMetadataHosts\[0\]: /,
    ],
    [
      { mcpServers: servers, allow: { users: [1] } },
      /^allow: only used with login: add a "github" section$/,
    ],
    [{ mcpServers: servers, publicUrl: "https://x.example" }, /^publicUrl: only used with login/],
  ];
  for (const [config, pattern] of cases) {
    const found = problems(config);
    assert.ok(
      found.some((p) => pattern.test(p)),
      `${JSON.stringify(config)} → ${JSON.stringify(found)}`,
    );
  }
  assert.deepEqual(
    problems({ ...base, github: { clientId: "x", clientSecret: "${NOT_SET_ANYWHERE}" } }),
    ["github.clientSecret: environment variable NOT_SET_ANYWHERE is not set"],
  );
});

Deno.test("loopback publicUrls are allowed over http for local clients and tests", () => {
  for (const url of ["http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:8080"]) {
    assert.equal(load({ ...base, publicUrl: url }).config.auth!.publicUrl, url);
  }
});

Deno.test("permission flags for a login config add the GitHub and metadata hosts and the KV store", () => {
  const loaded = load({
    ...base,
    listen: "127.0.0.1:8080",
    dataDir: "/var/lib/mop",
    github: {
      ...github,
      webUrl: "https://ghe.example.com",
      apiUrl: "https://ghe.example.com/api/v3",
    },
    oauth: { clientMetadataHosts: ["clients.example.org"] },
  });
  assert.deepEqual(derivePermissions(loaded, SOURCE), [
    "--no-prompt",
    "--allow-net=127.0.0.1:8080,127.0.0.1:8081,ghe.example.com,claude.ai,claude.com,chatgpt.com,clients.example.org",
    "--allow-read=/srv/mop/config.json,/dev/null,/var/lib/mop",
    "--allow-write=/var/lib/mop",
    "--allow-run=npx,kill",
    "--allow-env=PATH,HOME,USER,LANG,LC_*,TZ,MCP_PROXY_CONFIG,GITHUB_CLIENT_SECRET",
    "--unstable-kv",
    "--v8-flags=--max-semi-space-size=1",
    "--unstable-no-legacy-abort",
  ]);
  const gh =
    derivePermissions(load({ ...base, listen: "127.0.0.1:8080", dataDir: "/d" }), SOURCE)[1];
  assert.equal(
    gh,
    "--allow-net=127.0.0.1:8080,127.0.0.1:8081,github.com,api.github.com,claude.ai,claude.com,chatgpt.com",
  );
});

Deno.test("a login config reached through a tunnel without trustedProxies gets one warning naming the presets", () => {
  const advice = (extra: Record<string, unknown>) =>
    tunnelAdvice(load({ ...base, ...extra }).config);
  const [warning, ...rest] = advice({});
  assert.deepEqual(rest, []);
  assert.match(warning, /^publicUrl https:\/\/pi\.tail1234\.ts\.net is reached through a tunnel/);
  assert.match(warning, /network\.trustedProxies is not set/);
  assert.match(warning, /share one rate-limit bucket/);
  assert.match(warning, /"tailscale", "ngrok", "cloudflare"/);
  assert.equal(advice({ network: { trustedProxies: [] } }).length, 1, "an empty list is none");
  assert.deepEqual(advice({ network: { trustedProxies: "cloudflare" } }), []);
  assert.deepEqual(advice({ network: { trustedProxies: ["10.0.0.5/32"] } }), []);
  for (const url of ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"]) {
    assert.deepEqual(advice({ publicUrl: url }), [], `${url} is this machine`);
  }
  const plain = parseConfigText(JSON.stringify({ mcpServers: servers }), {
    source: SOURCE,
    env: () => undefined,
  });
  assert.deepEqual(tunnelAdvice(plain.config), [], "no login, no tunnel");
});
