/**
 * The authorization endpoint and consent (RFC 6749 §4.1.2.1, RFC 7636, RFC 9207; the confused
 * deputy: https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices):
 * the check order (client and redirect URI errors shown, never redirected; later errors redirected
 * with `state` and `iss`), S256-only PKCE, `state`, `scope` and `resource` handling, the consent
 * page and its CSRF double-submit, `__Host-` cookies, the upstream state created only on Allow,
 * Deny, the approval cookie, the single-use callback, and the success redirect.
 */
import assert from "node:assert/strict";
import { fixtureServer, startProxy } from "../../helpers/proxy.ts";
import {
  ALICE,
  fakeGitHub,
  GITHUB_CLIENT_ID,
  LOGIN_ENV,
  loginConfig,
} from "../../helpers/oauth.ts";
import {
  assertErrorPage,
  assertPageHeaders,
  authorizeUrl,
  consentForm,
  pkce,
  RawBrowser,
  redirectParams,
  registerPublic,
  RELAXED_LIMITS,
  type Seen,
  tokenRequest,
} from "../../helpers/oauth-raw.ts";

const LOOP = "http://127.0.0.1:9/callback";
const LOOP_OTHER = "http://127.0.0.1:9/other";
const LOOP_QUERY = "http://127.0.0.1:9/cb?tenant=acme&x=a%20b";
const CLAUDE = "https://claude.ai/api/mcp/auth_callback";
const CURSOR = "cursor://anysphere.cursor-mcp/oauth/callback";
const LABEL = /\((?:[^)]*)(?:gives itself|supplied by|claims|cannot verify)(?:[^)]*)\)/;

/** Asserts the cookie attributes (`__Host-`, Secure, HttpOnly, SameSite=Lax) of every Set-Cookie. */
function assertCookies(seen: Seen): void {
  for (const header of seen.setCookies) {
    const [pair, ...attrs] = header.split(";").map((s) => s.trim());
    const lower = attrs.map((a) => a.toLowerCase());
    assert.match(pair, /^__Host-[^=]+=/, header);
    assert.ok(lower.includes("secure"), `${header}: Secure`);
    assert.ok(lower.includes("httponly"), `${header}: HttpOnly`);
    assert.ok(lower.includes("samesite=lax"), `${header}: SameSite=Lax`);
    assert.ok(lower.includes("path=/"), `${header}: Path=/`);
    assert.ok(!lower.some((a) => a.startsWith("domain")), `${header}: no Domain`);
  }
}

function buttons(html: string): string[] {
  return [...html.matchAll(/<button\b[^>]*>([\s\S]*?)<\/button>/g)].map((m) => m[1].trim());
}

Deno.test("authorize and consent", async (t) => {
  const [gh, ghOrg] = await Promise.all([fakeGitHub(), fakeGitHub()]);
  const [proxy, orgProxy] = await Promise.all([
    startProxy(
      {
        mcpServers: { fx: fixtureServer(), fy: fixtureServer() },
        ...loginConfig(gh),
        oauth: { redirectUris: [CURSOR] },
        limits: RELAXED_LIMITS,
      },
      { env: LOGIN_ENV },
    ),
    startProxy(
      {
        mcpServers: { fx: fixtureServer() },
        ...loginConfig(ghOrg, { users: [ALICE.id], orgs: ["acme"] }),
        limits: RELAXED_LIMITS,
      },
      { env: LOGIN_ENV },
    ),
  ]);
  const origin = proxy.origin;
  const githubAuthorize = `${gh.webUrl}/login/oauth/authorize`;
  const allSeen: Seen[] = [];
  const browsers: RawBrowser[] = [];
  const browser = () => {
    const b = new RawBrowser();
    browsers.push(b);
    return b;
  };
  const githubHits = () => gh.requests.filter((r) => r.path === "/login/oauth/authorize").length;
  try {
    const loopClient = await registerPublic(origin, [LOOP, LOOP_OTHER], "Loop Client");
    const queryClient = await registerPublic(origin, [LOOP_QUERY], "Query Client");
    const claudeClient = await registerPublic(origin, [CLAUDE, LOOP], "Claude");
    const portless = await registerPublic(origin, ["http://localhost/callback"], "Portless");
    const { challenge, verifier } = await pkce();
    const valid = (extra: Record<string, string | string[] | undefined> = {}) =>
      authorizeUrl(origin, {
        client_id: loopClient,
        redirect_uri: LOOP,
        code_challenge: challenge,
        state: "st-1",
        ...extra,
      });

    await t.step("a valid request shows consent and sends nothing to GitHub", async () => {
      const page = await browser().get(valid());
      assert.equal(page.status, 200, page.body.slice(0, 400));
      assert.ok(consentForm(page.body));
      assert.equal(githubHits(), 0);
    });

    await t.step("an unknown or missing client: error page, no redirect", async () => {
      for (
        const clientId of [
          undefined,
          "",
          "mop_client_doesnotexist00000000",
          `${loopClient}x`,
          loopClient.toUpperCase(),
          "https://evil.example/oauth/client.json", // a CIMD id on an untrusted host
          "x".repeat(5000),
        ]
      ) {
        // Everything else is wrong too: the client check comes first, nothing is redirected.
        const page = await browser().get(authorizeUrl(origin, {
          client_id: clientId,
          redirect_uri: LOOP,
          response_type: "token",
          code_challenge_method: "plain",
          code_challenge: "short",
          state: "st",
        }));
        assertErrorPage(page);
        assert.equal(page.setCookies.length, 0, "no cookie before a valid request");
      }
      assert.equal(githubHits(), 0);
    });

    await t.step("the unknown-client page tells the person what to do", async () => {
      const host = new URL(origin).host;
      const gone = await browser().get(valid({ client_id: "mop_client_doesnotexist00000000" }));
      assertErrorPage(gone);
      assert.match(gone.body, /<title>Unknown client<\/title>/);
      assert.ok(gone.body.includes(`<code>${host}</code>`), "names this proxy");
      assert.match(gone.body, /remove this connector \(or MCP server\) and add it again/);
      assert.match(gone.body, /ChatGPT, Claude/);
      // A metadata document that could not be used: try again, or tell the owner the details.
      const cimd = await browser().get(
        valid({ client_id: "https://evil.example/oauth/client.json" }),
      );
      assertErrorPage(cimd);
      assert.match(cimd.body, /Try connecting again/);
      assert.match(cimd.body, /Details: [^<]*evil\.example/);
      assert.doesNotMatch(cimd.body, /remove this connector/);
    });

    await t.step("a missing or unregistered redirect_uri: error page, no redirect", async () => {
      const bad: (string | string[] | undefined)[] = [
        undefined,
        "",
        "http://127.0.0.1:9/elsewhere",
        "http://127.0.0.1:9/Callback", // case
        "HTTP://127.0.0.1:9/callback",
        "http://127.0.0.1:9/callback/", // trailing slash
        "http://127.0.0.1:9/callback#frag", // fragment
        "http://127.0.0.1:9/callback#",
        "http://127.0.0.1:9/callback?x=1", // added query
        "http://localhost:9/callback", // another loopback host is another URI
        "http://[::1]:9/callback",
        "http://127.0.0.1:9/callback%20",
        " http://127.0.0.1:9/callback",
        "http://127.0.0.1:9/callback\t",
        "http://user@127.0.0.1:9/callback",
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)//http://127.0.0.1:9/callback",
        "data:text/html,hi",
        "https://evil.example/callback",
        CLAUDE, // a preset, but not registered for this client
        [LOOP, "https://evil.example/callback"], // repeated parameter
        [LOOP, LOOP],
      ];
      for (const uri of bad) {
        const page = await browser().get(valid({ redirect_uri: uri, response_type: "token" }));
        assertErrorPage(page);
        assert.ok(!page.body.includes("<script"), "nothing of the URI is rendered raw");
      }
      // The same for an https registration: byte-for-byte, no case folding, no normalisation.
      for (
        const uri of [
          "https://CLAUDE.ai/api/mcp/auth_callback",
          "HTTPS://claude.ai/api/mcp/auth_callback",
          "https://claude.ai/api/mcp/Auth_callback",
          "https://claude.ai/api/mcp/auth_callback/",
          "https://claude.ai:443/api/mcp/auth_callback",
          "https://claude.ai/api/mcp/auth_callback#x",
          "https://claude.ai/api/mcp/auth_callback?x=1",
          "https://claude.ai/api/mcp/./auth_callback",
          "https://claude.ai/api/mcp/auth_callback/..",
          "https://claude.com/api/mcp/auth_callback",
          "http://claude.ai/api/mcp/auth_callback",
        ]
      ) {
        const page = await browser().get(
          valid({ client_id: claudeClient, redirect_uri: uri }),
        );
        assertErrorPage(page);
      }
      // A registered URI with a query matches only exactly.
      for (
        const uri of [
          "http://127.0.0.1:9/cb",
          "http://127.0.0.1:9/cb?tenant=acme",
          "http://127.0.0.1:9/cb?x=a%20b&tenant=acme",
          "http://127.0.0.1:9/cb?tenant=acme&x=a+b",
          `${LOOP_QUERY}&more=1`,
        ]
      ) {
        const page = await browser().get(valid({ client_id: queryClient, redirect_uri: uri }));
        assertErrorPage(page);
      }
      assert.equal(githubHits(), 0);
    });

    await t.step("a loopback redirect_uri on another port is accepted", async () => {
      for (
        const [clientId, uri] of [
          [loopClient, "http://127.0.0.1:54321/callback"],
          [loopClient, "http://127.0.0.1/callback"],
          [portless, "http://localhost:5555/callback"],
          [portless, "http://localhost/callback"],
          [queryClient, "http://127.0.0.1:8123/cb?tenant=acme&x=a%20b"],
        ]
      ) {
        const page = await browser().get(valid({ client_id: clientId, redirect_uri: uri }));
        assert.equal(page.status, 200, `${uri}: ${page.body.slice(0, 300)}`);
        assert.ok(consentForm(page.body), uri);
      }
      // The page names the port the browser will actually go to.
      const page = await browser().get(valid({ redirect_uri: "http://127.0.0.1:54321/callback" }));
      assert.ok(page.body.includes("http://127.0.0.1:54321"), "the requested port is shown");
      // Still only the port may differ.
      assertErrorPage(
        await browser().get(
          valid({ client_id: portless, redirect_uri: "http://127.0.0.1:5555/callback" }),
        ),
      );
    });

    /** Asserts a redirected error: exact target, error code, state echoed, iss, no cookie. */
    const redirected = (
      seen: Seen,
      error: string | string[],
      state: string | null,
      redirectUri = LOOP,
      status = 302,
    ) => {
      assert.equal(seen.status, status, `${seen.url}: ${seen.body.slice(0, 300)}`);
      const q = redirectParams(seen, redirectUri);
      const errors = Array.isArray(error) ? error : [error];
      assert.ok(errors.includes(q.get("error")!), `${seen.url}: error=${q.get("error")}`);
      assert.equal(q.get("state"), state, "state is echoed exactly");
      assert.equal(q.getAll("state").length, state === null ? 0 : 1);
      assert.equal(q.get("iss"), origin, "iss is the issuer");
      assert.equal(q.get("code"), null);
      assert.equal(seen.setCookies.length, 0, "no cookie on an error redirect");
      assert.equal(seen.headers.get("cache-control"), "no-store");
    };

    await t.step(
      "response_type other than code: unsupported_response_type, redirected",
      async () => {
        for (const type of ["token", "code id_token", "CODE", "id_token", "code token"]) {
          redirected(
            await browser().get(valid({ response_type: type, state: "x" })),
            "unsupported_response_type",
            "x",
          );
        }
        redirected(
          await browser().get(valid({ response_type: undefined, state: "x" })),
          ["unsupported_response_type", "invalid_request"],
          "x",
        );
        // It is checked before PKCE.
        redirected(
          await browser().get(valid({ response_type: "token", code_challenge: undefined })),
          "unsupported_response_type",
          "st-1",
        );
      },
    );

    await t.step(
      "PKCE: missing, plain, method without challenge, malformed → invalid_request",
      async () => {
        const cases: Record<string, string | undefined>[] = [
          { code_challenge: undefined }, // missing (method S256 alone)
          { code_challenge: undefined, code_challenge_method: undefined },
          { code_challenge_method: "plain" },
          { code_challenge_method: "PLAIN" },
          { code_challenge_method: "s256" },
          { code_challenge_method: undefined }, // a challenge without a method is plain
          { code_challenge_method: "" },
          { code_challenge: "" },
          { code_challenge: challenge.slice(0, 42) },
          { code_challenge: `${challenge}A` },
          { code_challenge: `${challenge.slice(0, 42)}=` },
          { code_challenge: `${challenge.slice(0, 42)}+` },
          { code_challenge: `${challenge.slice(0, 42)}/` },
          { code_challenge: "a".repeat(128) }, // a valid *verifier*, not a challenge
        ];
        for (const extra of cases) {
          redirected(
            await browser().get(valid({ ...extra, state: "pkce" })),
            "invalid_request",
            "pkce",
          );
        }
        assert.equal(githubHits(), 0);
      },
    );

    await t.step("state: echoed exactly, no minimum, 2 KiB maximum", async () => {
      for (const state of ["x", "a b+c/d=e&f?g#h%25é", "0", "-"]) {
        redirected(
          await browser().get(valid({ response_type: "token", state })),
          "unsupported_response_type",
          state,
        );
      }
      // Without a state, the error carries none (but still iss).
      redirected(
        await browser().get(valid({ response_type: "token", state: undefined })),
        "unsupported_response_type",
        null,
      );
      const max = "s".repeat(2048);
      const ok = await browser().get(valid({ state: max }));
      assert.equal(ok.status, 200, "2048 characters are accepted");
      assert.ok(consentForm(ok.body));
      const long = await browser().get(valid({ state: "s".repeat(2049) }));
      assert.equal(long.status, 302);
      const q = redirectParams(long, LOOP);
      assert.equal(q.get("error"), "invalid_request");
      assert.equal(q.get("iss"), origin);
      // A short state survives a whole denial round trip unchanged.
      const b = browser();
      const page = await b.get(valid({ state: "x" }));
      // (303: the answer to a POST is fetched with GET.)
      redirected(await b.submit(page, "deny"), "access_denied", "x", LOOP, 303);
    });

    await t.step(
      "scope: absent defaults to mcp, unknown scopes dropped, none left → invalid_scope",
      async () => {
        for (const scope of ["foo", "openid profile", "read:org", " ", "MCP"]) {
          redirected(
            await browser().get(valid({ scope, state: "sc" })),
            "invalid_scope",
            "sc",
          );
        }
        const absent = await browser().get(valid({ scope: undefined }));
        assert.equal(absent.status, 200);
        // Scopes in plain words: `mcp` is using the listed servers.
        assert.match(absent.body, /It will be able to use the MCP servers listed above\.<\/p>/);
        const mixed = await browser().get(valid({ scope: "foo mcp bar" }));
        assert.equal(mixed.status, 200);
        assert.match(mixed.body, /It will be able to use the MCP servers listed above\.<\/p>/);
        assert.ok(!mixed.body.includes("foo"), "unknown scopes are dropped");
        const offline = await browser().get(valid({ scope: "mcp offline_access" }));
        assert.match(
          offline.body,
          /able to use the MCP servers listed above, and stay connected without asking you again\./,
        );
        assert.ok(!offline.body.includes("offline_access"), "no scope names on the page");
      },
    );

    await t.step(
      "resource: ours only (canonicalised), else invalid_target; absent → all servers",
      async () => {
        for (
          const resource of [
            "https://evil.example/mcp/fx",
            `${origin}/mcp/nope`,
            `${origin}/mcp`,
            `${origin}/sse/nope`,
            `${origin}/sse/fx/messages`,
            `${origin}/mcp/fx/extra`,
            `${origin}/mcp/fx#frag`,
            `${origin}/mcp/fx?x=1`,
            `${origin.replace("127.0.0.1", "localhost")}/mcp/fx`,
            `${origin.replace("http:", "https:")}/mcp/fx`,
            "mcp/fx",
            "",
            [`${origin}/mcp/fx`, `${origin}/mcp/fy`],
          ]
        ) {
          redirected(
            await browser().get(valid({ resource, state: "rs" })),
            "invalid_target",
            "rs",
          );
        }
        const servers = (html: string) => /Servers: (.*?)<br>/.exec(html)?.[1];
        const all = await browser().get(valid({ resource: undefined }));
        assert.equal(all.status, 200);
        assert.equal(servers(all.body), "<code>fx</code>, <code>fy</code>");
        for (const resource of [origin, `${origin}/`, origin.toUpperCase()]) {
          const page = await browser().get(valid({ resource }));
          assert.equal(page.status, 200, resource);
          assert.equal(servers(page.body), "<code>fx</code>, <code>fy</code>", resource);
        }
        for (
          const resource of [
            `${origin}/mcp/fx`,
            `${origin}/mcp/fx/`,
            `${origin.replace("http://", "HTTP://")}/mcp/fx`,
            // The legacy SSE URL names the same server.
            `${origin}/sse/fx`,
          ]
        ) {
          const page = await browser().get(valid({ resource }));
          assert.equal(page.status, 200, resource);
          assert.equal(servers(page.body), "<code>fx</code>", resource);
        }
        const fy = await browser().get(valid({ resource: `${origin}/mcp/fy` }));
        assert.equal(servers(fy.body), "<code>fy</code>");
        assert.equal(githubHits(), 0);
      },
    );

    await t.step("the consent page: who, where, what, and the security headers", async () => {
      const b = browser();
      const page = await b.get(valid());
      assert.equal(page.status, 200);
      assertPageHeaders(page.headers);
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
      // The client's own name, labelled as its claim.
      const name = /<strong>Loop Client<\/strong>\s*(.{0,200})/.exec(page.body);
      assert.ok(name, "the client name is shown");
      assert.match(name[1], LABEL, "the name is labelled as supplied by the client");
      // This proxy's host, in the title and the text; no "your servers" (an invited person reads it).
      const host = new URL(origin).host;
      assert.match(page.body, new RegExp(`<h1>Allow access to the MCP servers at ${host}\\?</h1>`));
      assert.ok(page.body.includes(`MCP servers at <code>${host}</code> on your behalf`));
      assert.doesNotMatch(page.body, /your MCP servers|allow-listed/);
      // The full redirect origin: scheme, host and port.
      assert.ok(page.body.includes("<code>http://127.0.0.1:9</code>"), "the redirect origin");
      // Servers and scopes, and what GitHub is asked for (nothing for user-only lists).
      assert.match(page.body, /Servers: <code>fx<\/code>, <code>fy<\/code>/);
      assert.ok(!page.body.includes("read:org"), "no GitHub scope for a user-only allow-list");
      assert.match(page.body, /GitHub/);
      // Exactly two buttons: Allow and Deny.
      assert.deepEqual(buttons(page.body), ["Allow", "Deny"]);
      assert.match(page.body, /<button[^>]*value="allow" class="primary">Allow<\/button>/);
      assert.match(page.body, /<button[^>]*value="deny"[^>]*>Deny<\/button>/);
      const form = consentForm(page.body)!;
      assert.equal(form.action, `${origin}/consent`);
      assert.match(page.body, /<form method="post"/);
      // No script at all on the page.
      assert.ok(!/<script/i.test(page.body));
      // The transaction's cookie (and at most a browser binding), with the __Host- attributes.
      assert.ok(page.setCookies.length >= 1 && page.setCookies.length <= 2, page.setCookies.join());
      assertCookies(page);
      // The https client shows its host, without the loopback warning.
      const claude = await browser().get(valid({ client_id: claudeClient, redirect_uri: CLAUDE }));
      assert.equal(claude.status, 200);
      // Without the scheme's default port.
      assert.ok(claude.body.includes("sent back to <code>https://claude.ai</code>."), claude.body);
      // (The proxy's own port, which the OS picks, may contain 443: only the client's host counts.)
      assert.ok(!claude.body.includes("claude.ai:443"), claude.body);
      assert.ok(!claude.body.includes("localhost"), "no loopback warning for a mixed client");
      assert.ok(!claude.body.includes('class="warn"'));
    });

    await t.step("a loopback-only client gets a warning", async () => {
      const page = await browser().get(valid());
      assert.match(page.body, /class="warn"[^>]*>[^<]*(localhost|loopback|this computer)/i);
      const portlessPage = await browser().get(
        valid({ client_id: portless, redirect_uri: "http://localhost:4000/callback" }),
      );
      assert.match(portlessPage.body, /class="warn"/);
    });

    await t.step("a configured custom-scheme redirect is shown prominently", async () => {
      const id = await registerPublic(origin, [CURSOR], "Cursor");
      const page = await browser().get(valid({ client_id: id, redirect_uri: CURSOR }));
      assert.equal(page.status, 200, page.body.slice(0, 300));
      assert.match(page.body, /class="warn"[^>]*>[^]*?<code>cursor:<\/code>/);
      assert.ok(page.body.includes("cursor://anysphere.cursor-mcp"), "the target is named");
    });

    await t.step("a hostile client_name is escaped", async () => {
      const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`;
      const id = await registerPublic(origin, [LOOP], evil);
      const page = await browser().get(valid({ client_id: id }));
      assert.equal(page.status, 200);
      assert.ok(!page.body.includes("<script"), "no raw <script>");
      assert.ok(!page.body.includes("<img"), "no raw <img>");
      assert.ok(
        page.body.includes("&#60;script&#62;alert(1)&#60;/script&#62;") ||
          page.body.includes("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is shown escaped",
      );
      assert.deepEqual(buttons(page.body), ["Allow", "Deny"]);
    });

    await t.step("the org allow-list asks GitHub for read:org, and says so", async () => {
      const id = await registerPublic(orgProxy.origin, [LOOP], "Org Client");
      const b = browser();
      const page = await b.get(authorizeUrl(orgProxy.origin, {
        client_id: id,
        redirect_uri: LOOP,
        code_challenge: challenge,
        state: "org",
      }));
      assert.equal(page.status, 200);
      assert.match(page.body, /<code>read:org<\/code>/);
      assert.equal(ghOrg.authorizeRequests.length, 0);
      const allowed = await b.submit(page, "allow");
      assert.equal(allowed.status, 303);
      const up = new URL(allowed.location!);
      assert.equal(`${up.origin}${up.pathname}`, `${ghOrg.webUrl}/login/oauth/authorize`);
      assert.equal(up.searchParams.get("scope"), "read:org");
    });

    await t.step(
      "CSRF: the token is stable per transaction and required with its cookie",
      async () => {
        const url = valid({ state: "csrf" });
        const b = browser();
        const first = await b.get(url);
        const again = await b.get(url); // reload, duplicate GET, prefetch
        const f1 = consentForm(first.body)!;
        const f2 = consentForm(again.body)!;
        assert.equal(f2.txn, f1.txn);
        assert.equal(f2.csrf, f1.csrf, "the CSRF token survives a second GET");
        assert.deepEqual(again.setCookies, first.setCookies, "the same cookies again");
        assert.ok(f1.csrf.length >= 32);
        const cookie = b.cookie(origin)!;

        // An attacker who loads the very same URL in their own browser learns nothing that
        // approves the victim's transaction: the token is not a function of the URL alone.
        const attacker = browser();
        const theirs = consentForm((await attacker.get(url)).body)!;
        assert.notEqual(theirs.csrf, f1.csrf, "another browser gets another token");
        for (
          const fields of [
            { txn: theirs.txn, csrf: theirs.csrf },
            { txn: f1.txn, csrf: theirs.csrf },
          ]
        ) {
          // The victim's browser attaches its own cookies to the forged (same-site) POST.
          const forged = await b.post(`${origin}/consent`, { ...fields, action: "allow" });
          assert.ok(forged.status === 403 || forged.status === 400, `forged: ${forged.status}`);
          assertErrorPage(forged, forged.status);
        }

        // Another transaction (another challenge) in the same browser.
        const other = await pkce();
        const otherPage = await b.get(valid({ code_challenge: other.challenge, state: "csrf" }));
        const f4 = consentForm(otherPage.body)!;
        assert.notEqual(f4.txn, f1.txn);
        assert.notEqual(f4.csrf, f1.csrf);
        // And another transaction in another browser: its cookies and its token.
        const b2 = browser();
        const f5 = consentForm(
          (await b2.get(valid({ code_challenge: other.challenge, state: "csrf" }))).body,
        )!;
        const otherCookie = b2.cookie(origin)!;

        const refused: [string, Record<string, string>, string | null][] = [
          ["no cookie", { txn: f1.txn, csrf: f1.csrf, action: "allow" }, null],
          ["no csrf field", { txn: f1.txn, action: "allow" }, cookie],
          ["empty csrf field", { txn: f1.txn, csrf: "", action: "allow" }, cookie],
          [
            "wrong csrf",
            { txn: f1.txn, csrf: `${f1.csrf.slice(0, -2)}AA`, action: "allow" },
            cookie,
          ],
          ["another transaction's token", { txn: f1.txn, csrf: f4.csrf, action: "allow" }, cookie],
          [
            "this transaction's token for another transaction",
            { txn: f4.txn, csrf: f1.csrf, action: "allow" },
            cookie,
          ],
          [
            "another transaction's cookie and token",
            { txn: f1.txn, csrf: f5.csrf, action: "allow" },
            otherCookie,
          ],
          [
            "another browser's transaction and token, with this browser's cookies",
            { txn: f5.txn, csrf: f5.csrf, action: "allow" },
            cookie,
          ],
          [
            "this transaction's token with only another's cookie",
            { txn: f1.txn, csrf: f1.csrf, action: "allow" },
            otherCookie,
          ],
          ["no cookie, deny", { txn: f1.txn, csrf: f1.csrf, action: "deny" }, null],
        ];
        for (const [what, fields, sent] of refused) {
          const res = await b.post(`${origin}/consent`, fields, sent);
          assert.equal(res.status, 403, `${what}: ${res.status} ${res.body.slice(0, 200)}`);
          assertErrorPage(res, 403);
        }
        // An unknown transaction is refused too, and nothing went anywhere.
        assertErrorPage(
          await b.post(`${origin}/consent`, { txn: "nope", csrf: f1.csrf, action: "allow" }),
        );
        const get = await fetch(`${origin}/consent`, { redirect: "manual" });
        await get.body?.cancel();
        assert.equal(get.status, 405);
        assert.equal(githubHits(), 0, "no refused approval reached GitHub");

        // The genuine form still works after all that.
        const ok = await b.post(`${origin}/consent`, {
          txn: f1.txn,
          csrf: f1.csrf,
          action: "allow",
        });
        assert.equal(ok.status, 303);
        assert.ok(ok.location!.startsWith(`${githubAuthorize}?`));
        // The back button: the same page's form, submitted again, still works.
        const back = await b.post(`${origin}/consent`, {
          txn: f1.txn,
          csrf: f1.csrf,
          action: "allow",
        });
        assert.equal(back.status, 303);

        // Duplicate GETs racing in a fresh browser: whichever page is shown, its form works.
        const racer = browser();
        const pages = await Promise.all([racer.get(url), racer.get(url)]);
        for (const page of pages) {
          const submitted = await racer.submit(page, "allow");
          assert.equal(submitted.status, 303, submitted.body.slice(0, 200));
        }
      },
    );

    // The full flow, step by step, with a client whose redirect URI has its own query.
    const flow = browser();
    let callbackUrl = "";
    let txnCookie = "";
    let finalCode = "";
    await t.step("Allow: the upstream state is created now, then 303 to GitHub", async () => {
      const hitsBefore = githubHits();
      const page = await flow.get(authorizeUrl(origin, {
        client_id: queryClient,
        redirect_uri: LOOP_QUERY,
        code_challenge: challenge,
        state: "x",
      }));
      assert.equal(page.status, 200);
      const again = await flow.get(page.url); // a prefetch creates nothing upstream either
      assert.equal(again.status, 200);
      assert.equal(githubHits(), hitsBefore, "no GitHub request before Allow");
      const before = [...page.setCookies, ...again.setCookies];
      txnCookie = flow.cookie(origin)!;

      const allowed = await flow.submit(page, "allow");
      assert.equal(allowed.status, 303);
      assertCookies(allowed);
      assert.equal(allowed.headers.get("cache-control"), "no-store");
      const up = new URL(allowed.location!);
      assert.equal(`${up.origin}${up.pathname}`, githubAuthorize);
      const q = up.searchParams;
      assert.equal(q.get("client_id"), GITHUB_CLIENT_ID);
      assert.equal(q.get("redirect_uri"), `${origin}/auth/callback`);
      assert.equal(q.get("response_type") ?? "code", "code");
      assert.equal(q.get("code_challenge_method"), "S256");
      assert.match(q.get("code_challenge") ?? "", /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(
        q.get("code_challenge"),
        challenge,
        "the client's challenge is not forwarded",
      );
      assert.equal(q.get("allow_signup"), "false");
      assert.equal(q.get("scope") ?? "", "", "no GitHub scope for a user-only allow-list");
      const state = q.get("state") ?? "";
      assert.match(state, /^[A-Za-z0-9_-]+$/);
      assert.ok(state.length * 6 >= 256, `the upstream state has ${state.length * 6} bits`);
      assert.notEqual(state, "x", "the client's state is not sent upstream");
      for (const c of [...before, ...allowed.setCookies]) {
        assert.ok(!c.includes(state), "no cookie carries the upstream state");
      }

      const github = await flow.get(allowed.location!);
      assert.equal(github.status, 302);
      callbackUrl = github.location!;
      assert.ok(callbackUrl.startsWith(`${origin}/auth/callback?`), callbackUrl);
      assert.equal(new URL(callbackUrl).searchParams.get("state"), state);
    });

    await t.step("the callback redirects with code, state and iss, keeping the query", async () => {
      const done = await flow.get(callbackUrl);
      assert.equal(done.status, 302, done.body.slice(0, 300));
      assertCookies(done);
      const location = done.headers.get("location")!;
      assert.ok(
        location.startsWith(`${LOOP_QUERY}&code=`),
        `the registered query is kept byte for byte: ${location}`,
      );
      const q = new URL(location).searchParams;
      assert.equal(q.get("tenant"), "acme");
      assert.equal(q.get("x"), "a b");
      assert.match(q.get("code") ?? "", /^mop_code_/);
      assert.equal(q.get("state"), "x");
      assert.equal(q.get("iss"), origin);
      assert.equal(q.get("error"), null);
      finalCode = q.get("code")!;
      // The transaction cookie is cleared, an approval cookie is set.
      const names = done.setCookies.map((c) => c.split("=")[0]);
      assert.ok(names.some((n) => n.startsWith("__Host-")));
      assert.ok(
        done.setCookies.some((c) => /max-age=0/i.test(c)),
        "the transaction cookie is cleared",
      );
    });

    await t.step("an absent scope becomes mcp in the token response", async () => {
      const r = await tokenRequest(origin, {
        grant_type: "authorization_code",
        code: finalCode,
        redirect_uri: LOOP_QUERY,
        client_id: queryClient,
        code_verifier: verifier,
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.scope, "mcp");
      assert.equal(r.body.token_type, "Bearer");
    });

    await t.step("the callback's upstream state is single-use and needs the cookie", async () => {
      // Replay in the same browser (its transaction cookie was cleared by the callback).
      const replay = await flow.get(callbackUrl);
      assertErrorPage(replay);
      // Replay with the cookies the browser had before the callback cleared its transaction.
      const replayWithOld = await fetch(callbackUrl, {
        headers: { cookie: txnCookie },
        redirect: "manual",
      });
      const body = await replayWithOld.text();
      assert.ok(replayWithOld.status >= 400 && replayWithOld.status < 500, body.slice(0, 200));
      assert.equal(replayWithOld.headers.get("location"), null);
      assert.ok(!body.includes("mop_code_"));

      // A fresh approval whose callback URL is opened in a browser without the cookie.
      const b = browser();
      const page = await b.get(valid({ state: "stolen" }));
      const allowed = await b.submit(page, "allow");
      const github = await b.get(allowed.location!);
      const stranger = await browser().get(github.location!);
      assertErrorPage(stranger, 403);
      // Unknown and missing states.
      const unknown = new URL(github.location!);
      unknown.searchParams.set("state", "A".repeat(43));
      assertErrorPage(await b.get(unknown.href));
      assertErrorPage(await b.get(`${origin}/auth/callback?code=abc`));
      assertErrorPage(await b.get(`${origin}/auth/callback`));
    });

    await t.step("Deny: access_denied with state and iss, and nothing sent to GitHub", async () => {
      const hits = githubHits();
      const b = browser();
      const page = await b.get(
        valid({ client_id: queryClient, redirect_uri: LOOP_QUERY, state: "deny-me" }),
      );
      const denied = await b.submit(page, "deny");
      assert.ok(denied.status === 302 || denied.status === 303, String(denied.status));
      const q = redirectParams(denied, LOOP_QUERY);
      assert.equal(q.get("error"), "access_denied");
      assert.equal(q.get("state"), "deny-me");
      assert.equal(q.get("iss"), origin);
      assert.equal(q.get("code"), null);
      assert.equal(githubHits(), hits);
      // A denial sets no approval: the next request asks again.
      const next = await b.get(valid({ client_id: queryClient, redirect_uri: LOOP_QUERY }));
      assert.equal(next.status, 200);
      assert.ok(consentForm(next.body));
    });

    await t.step(
      "the approval cookie skips consent only for the same client and redirect URI",
      async () => {
        const other = await pkce();
        // Same browser, same (client, redirect_uri), a new request: straight to GitHub.
        const skip = await flow.get(authorizeUrl(origin, {
          client_id: queryClient,
          redirect_uri: LOOP_QUERY,
          code_challenge: other.challenge,
          state: "again",
        }));
        assert.equal(skip.status, 303, skip.body.slice(0, 300));
        assert.ok(skip.location!.startsWith(`${githubAuthorize}?`));
        assertCookies(skip);
        // The skip still completes the normal way.
        const github = await flow.get(skip.location!);
        const done = await flow.get(github.location!);
        const q = redirectParams(done, LOOP_QUERY);
        assert.equal(q.get("state"), "again");
        assert.match(q.get("code") ?? "", /^mop_code_/);

        // Another browser (no approval cookie) is asked.
        const elsewhere = await browser().get(authorizeUrl(origin, {
          client_id: queryClient,
          redirect_uri: LOOP_QUERY,
          code_challenge: other.challenge,
        }));
        assert.equal(elsewhere.status, 200);

        // Approve loopClient for LOOP, then its other redirect URI is asked again.
        const page = await flow.get(valid({ state: "a" }));
        assert.equal(page.status, 200, "a different client is asked");
        const allowed = await flow.submit(page, "allow");
        await flow.get((await flow.get(allowed.location!)).location!);
        const same = await flow.get(valid({ code_challenge: other.challenge }));
        assert.equal(same.status, 303, "approved (client, redirect_uri) skips consent");
        const otherUri = await flow.get(valid({ redirect_uri: LOOP_OTHER }));
        assert.equal(otherUri.status, 200, "another redirect URI of the same client is asked");
        assert.ok(consentForm(otherUri.body));

        // The same app re-registered (a new client_id, same metadata) is asked again.
        const reregistered = await registerPublic(origin, [LOOP_QUERY], "Query Client");
        const fresh = await flow.get(authorizeUrl(origin, {
          client_id: reregistered,
          redirect_uri: LOOP_QUERY,
          code_challenge: other.challenge,
        }));
        assert.equal(fresh.status, 200, "a new client_id needs its own consent");
        assert.ok(consentForm(fresh.body));
      },
    );

    await t.step("every cookie the flow set was __Host-, Secure, HttpOnly, SameSite=Lax", () => {
      for (const b of browsers) for (const seen of b.seen) allSeen.push(seen);
      let count = 0;
      for (const seen of allSeen) {
        if (!seen.url.startsWith(origin)) continue;
        assertCookies(seen);
        count += seen.setCookies.length;
      }
      assert.ok(count > 10, `${count} cookies checked`);
    });

    await t.step("/authorize and /auth/callback answer only GET", async () => {
      for (const path of ["/authorize", "/auth/callback"]) {
        const res = await fetch(`${origin}${path}`, { method: "POST", redirect: "manual" });
        await res.body?.cancel();
        assert.equal(res.status, 405, path);
      }
    });
  } finally {
    await Promise.all([proxy.stop(), orgProxy.stop()]);
    await Promise.all([gh.close(), ghOrg.close()]);
  }
});
