// Self-test of tests/fixtures/fake-github.ts: every endpoint and quirk, with plain fetch calls.
import assert from "node:assert/strict";
import * as oauth from "oauth4webapi";
import { type FakeGitHub, startFakeGitHub } from "../fixtures/fake-github.ts";

const CLIENT_ID = "Iv1.fakeclientid0001";
const CLIENT_SECRET = "fake-client-secret-0001";
const CALLBACK = "https://mcp.example.com/auth/callback";
const OCTO = { id: 583231, login: "octocat" };
const HUBOT = { id: 7, login: "hubot" };

const API_HEADERS = {
  "accept": "application/vnd.github+json",
  "x-github-api-version": "2022-11-28",
  "user-agent": "mcp-oauth-proxy-test/0",
};

async function withFake(fn: (gh: FakeGitHub) => Promise<void>): Promise<void> {
  const gh = await startFakeGitHub({
    apps: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }],
    users: [OCTO, HUBOT],
    currentUserId: OCTO.id,
  });
  try {
    await fn(gh);
  } finally {
    await gh.close();
  }
}

/** GET the authorize endpoint without following the redirect; returns status and Location. */
async function authorize(
  gh: FakeGitHub,
  params: Record<string, string>,
): Promise<{ status: number; location: URL | null; body: string }> {
  const url = new URL(`${gh.webUrl}/login/oauth/authorize`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const res = await fetch(url, { redirect: "manual" });
  const body = await res.text();
  const location = res.headers.get("location");
  return { status: res.status, location: location ? new URL(location) : null, body };
}

async function getCode(gh: FakeGitHub, extra: Record<string, string> = {}): Promise<string> {
  const { status, location } = await authorize(gh, {
    client_id: CLIENT_ID,
    redirect_uri: CALLBACK,
    state: "s",
    ...extra,
  });
  assert.equal(status, 302);
  const code = location?.searchParams.get("code");
  assert.ok(code, `no code in ${location}`);
  return code;
}

async function exchange(
  gh: FakeGitHub,
  params: Record<string, string>,
  headers: Record<string, string> = { accept: "application/json" },
): Promise<{ status: number; contentType: string | null; text: string }> {
  const res = await fetch(`${gh.webUrl}/login/oauth/access_token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(params),
  });
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    text: await res.text(),
  };
}

async function tokenFor(gh: FakeGitHub, scope = "read:org"): Promise<string> {
  const code = await getCode(gh, { scope });
  const res = await exchange(gh, {
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    code,
    redirect_uri: CALLBACK,
  });
  const json = JSON.parse(res.text);
  assert.ok(json.access_token, res.text);
  return json.access_token;
}

async function api(
  gh: FakeGitHub,
  path: string,
  token?: string | null,
  init: RequestInit & { scheme?: string } = {},
): Promise<{ status: number; json: Record<string, unknown> | null; headers: Headers }> {
  const headers = new Headers(API_HEADERS);
  if (token) headers.set("authorization", `${init.scheme ?? "Bearer"} ${token}`);
  new Headers(init.headers).forEach((v, k) => headers.set(k, v));
  const res = await fetch(`${gh.apiUrl}${path}`, { ...init, headers });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch { /* not JSON */ }
  return { status: res.status, json, headers: res.headers };
}

Deno.test("fake-github: URLs are loopback, API is GHES-style on the same server", async () => {
  await withFake(async (gh) => {
    assert.match(gh.webUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(gh.apiUrl, `${gh.webUrl}/api/v3`);
    const res = await fetch(`${gh.webUrl}/nope`);
    assert.equal(res.status, 404);
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
    await res.body?.cancel();
  });
});

Deno.test("fake-github: authorize with unknown client_id shows a 404 HTML page", async () => {
  await withFake(async (gh) => {
    const r = await authorize(gh, { client_id: "nope", redirect_uri: CALLBACK, state: "s" });
    assert.equal(r.status, 404);
    assert.equal(r.location, null);
    assert.match(r.body, /<html/);
    assert.equal(gh.authorizeRequests.at(-1)?.outcome, "error_page");
    const missing = await authorize(gh, { redirect_uri: CALLBACK });
    assert.equal(missing.status, 404);
  });
});

Deno.test("fake-github: authorize redirects with code and state, and records the request", async () => {
  await withFake(async (gh) => {
    const r = await authorize(gh, {
      client_id: CLIENT_ID,
      redirect_uri: "https://mcp.example.com/auth/callback?keep=1",
      scope: "read:org",
      state: "st/ate+=",
      allow_signup: "false",
    });
    assert.equal(r.status, 302);
    assert.ok(r.location);
    assert.equal(r.location.origin + r.location.pathname, CALLBACK);
    assert.equal(r.location.searchParams.get("keep"), "1");
    assert.equal(r.location.searchParams.get("state"), "st/ate+=");
    assert.match(r.location.searchParams.get("code") ?? "", /^[0-9a-f]{20}$/);
    assert.equal(r.location.searchParams.get("iss"), null, "GitHub sends no iss");
    const rec = gh.authorizeRequests.at(-1)!;
    assert.equal(rec.clientId, CLIENT_ID);
    assert.equal(rec.redirectUri, "https://mcp.example.com/auth/callback?keep=1");
    assert.equal(rec.scope, "read:org");
    assert.equal(rec.allowSignup, "false");
    assert.equal(rec.outcome, "code");
    assert.deepEqual(gh.issuedCodes, [r.location.searchParams.get("code")]);

    const noState = await authorize(gh, { client_id: CLIENT_ID, redirect_uri: CALLBACK });
    assert.equal(noState.location?.searchParams.has("state"), false);
  });
});

Deno.test("fake-github: no current user answers access_denied like Cancel", async () => {
  await withFake(async (gh) => {
    gh.setCurrentUser(null);
    const r = await authorize(gh, { client_id: CLIENT_ID, redirect_uri: CALLBACK, state: "xyz" });
    assert.equal(r.status, 302);
    assert.equal(r.location?.searchParams.get("error"), "access_denied");
    assert.equal(r.location?.searchParams.get("state"), "xyz");
    assert.ok(r.location?.searchParams.get("error_description"));
    assert.ok(r.location?.searchParams.get("error_uri"));
    assert.equal(r.location?.searchParams.has("code"), false);
  });
});

Deno.test("fake-github: PKCE accepts only S256 with a well-formed challenge", async () => {
  await withFake(async (gh) => {
    const challenge = await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier());
    const cases: Record<string, string>[] = [
      { code_challenge: challenge, code_challenge_method: "plain" },
      { code_challenge: challenge }, // RFC 7636: no method means plain
      { code_challenge_method: "S256" },
      { code_challenge: "short", code_challenge_method: "S256" },
    ];
    for (const extra of cases) {
      const r = await authorize(gh, { client_id: CLIENT_ID, redirect_uri: CALLBACK, ...extra });
      assert.equal(r.location?.searchParams.get("error"), "invalid_request", JSON.stringify(extra));
    }
    const ok = await authorize(gh, {
      client_id: CLIENT_ID,
      redirect_uri: CALLBACK,
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    assert.ok(ok.location?.searchParams.get("code"));
  });
});

Deno.test("fake-github: registered callback URL enforces GitHub's redirect_uri rule", async () => {
  const gh = await startFakeGitHub({
    apps: [{ clientId: "app2", clientSecret: "sec2", callbackUrl: CALLBACK }],
    users: [OCTO],
    currentUserId: OCTO.id,
  });
  try {
    const bad = await authorize(gh, {
      client_id: "app2",
      redirect_uri: "https://evil.example/auth/callback",
      state: "s",
    });
    assert.equal(bad.status, 302);
    assert.equal(bad.location?.origin + bad.location!.pathname, CALLBACK);
    assert.equal(bad.location?.searchParams.get("error"), "redirect_uri_mismatch");
    assert.equal(bad.location?.searchParams.get("state"), "s");
    // A path under the callback path is accepted; a sibling path is not.
    const sub = await authorize(gh, { client_id: "app2", redirect_uri: `${CALLBACK}/sub` });
    assert.ok(sub.location?.searchParams.get("code"));
    const sibling = await authorize(gh, {
      client_id: "app2",
      redirect_uri: "https://mcp.example.com/auth/callbackX",
    });
    assert.equal(sibling.location?.searchParams.get("error"), "redirect_uri_mismatch");
    // Without redirect_uri, GitHub uses the registered callback.
    const none = await authorize(gh, { client_id: "app2" });
    assert.equal(none.location?.origin + none.location!.pathname, CALLBACK);
    assert.ok(none.location?.searchParams.get("code"));
    // Loopback IP callbacks match on any port.
    gh.registerApp({
      clientId: "app3",
      clientSecret: "sec3",
      callbackUrl: "http://127.0.0.1:8080/cb",
    });
    const loop = await authorize(gh, { client_id: "app3", redirect_uri: "http://127.0.0.1:1/cb" });
    assert.ok(loop.location?.searchParams.get("code"));
  } finally {
    await gh.close();
  }
});

Deno.test("fake-github: token endpoint answers form-encoded unless Accept: application/json", async () => {
  await withFake(async (gh) => {
    const base = { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uri: CALLBACK };
    const form = await exchange(
      gh,
      { ...base, code: await getCode(gh, { scope: "read:org" }) },
      {},
    );
    assert.equal(form.status, 200);
    assert.match(form.contentType ?? "", /^application\/x-www-form-urlencoded/);
    const p = new URLSearchParams(form.text);
    assert.match(p.get("access_token") ?? "", /^gho_[A-Za-z0-9]{36}$/);
    assert.equal(p.get("token_type"), "bearer");
    assert.equal(p.get("scope"), "read:org");

    const json = await exchange(gh, { ...base, code: await getCode(gh, { scope: "user:email" }) });
    assert.match(json.contentType ?? "", /^application\/json/);
    const body = JSON.parse(json.text);
    assert.deepEqual(Object.keys(body), ["access_token", "token_type", "scope"]);
    assert.equal(body.token_type, "bearer", "lower-case bearer");
    // The user granted read:org earlier: the new token carries the union, comma-separated.
    assert.equal(body.scope, "read:org,user:email");
    assert.deepEqual(gh.issuedTokens, [p.get("access_token"), body.access_token]);
    assert.equal(gh.tokenRequests.at(-1)?.accept, "application/json");
    assert.equal(gh.tokenInfo(body.access_token)?.userId, OCTO.id);

    // Empty scope request: an empty scope string.
    gh.setCurrentUser(HUBOT.id);
    const empty = await exchange(gh, { ...base, code: await getCode(gh) });
    assert.equal(JSON.parse(empty.text).scope, "");

    // HTTP Basic client authentication also works.
    const basic = await exchange(gh, { code: await getCode(gh), redirect_uri: CALLBACK }, {
      accept: "application/json",
      authorization: `Basic ${btoa(`${CLIENT_ID}:${CLIENT_SECRET}`)}`,
    });
    assert.ok(JSON.parse(basic.text).access_token);
  });
});

Deno.test("fake-github: token endpoint errors come back with HTTP 200", async () => {
  await withFake(async (gh) => {
    const base = { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uri: CALLBACK };
    const expectError = async (
      params: Record<string, string>,
      error: string,
      headers?: Record<string, string>,
    ) => {
      const r = await exchange(gh, params, headers);
      assert.equal(r.status, 200, "errors are HTTP 200");
      const body = r.contentType?.startsWith("application/json")
        ? JSON.parse(r.text)
        : Object.fromEntries(new URLSearchParams(r.text));
      assert.equal(body.error, error, r.text);
      assert.ok(body.error_description);
      assert.match(body.error_uri, /^https:\/\/docs\.github\.com\//);
      assert.equal(body.access_token, undefined);
    };

    await expectError(
      { ...base, client_secret: "wrong", code: await getCode(gh) },
      "incorrect_client_credentials",
    );
    await expectError(
      { ...base, client_id: "unknown", code: await getCode(gh) },
      "incorrect_client_credentials",
    );
    await expectError({ ...base, code: "0000000000aaaaaaaaaa" }, "bad_verification_code");
    // Form-encoded error without Accept: application/json.
    await expectError({ ...base, code: "nope" }, "bad_verification_code", {});

    // Single use.
    const code = await getCode(gh);
    const first = await exchange(gh, { ...base, code });
    assert.ok(JSON.parse(first.text).access_token);
    await expectError({ ...base, code }, "bad_verification_code");

    // Expiry after 10 minutes.
    const old = await getCode(gh);
    gh.advanceClock(10 * 60 * 1000 + 1);
    await expectError({ ...base, code: old }, "bad_verification_code");

    // redirect_uri must equal the one sent to authorize.
    await expectError(
      { ...base, code: await getCode(gh), redirect_uri: "https://mcp.example.com/other" },
      "redirect_uri_mismatch",
    );

    // PKCE: missing or wrong verifier.
    const verifier = oauth.generateRandomCodeVerifier();
    const pkce = {
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    };
    await expectError({ ...base, code: await getCode(gh, pkce) }, "bad_verification_code");
    await expectError(
      { ...base, code: await getCode(gh, pkce), code_verifier: oauth.generateRandomCodeVerifier() },
      "bad_verification_code",
    );
    const good = await exchange(gh, {
      ...base,
      code: await getCode(gh, pkce),
      code_verifier: verifier,
    });
    assert.ok(JSON.parse(good.text).access_token);
    assert.deepEqual(
      gh.tokenRequests.map((t) => t.error),
      [
        "incorrect_client_credentials",
        "incorrect_client_credentials",
        "bad_verification_code",
        "bad_verification_code",
        null,
        "bad_verification_code",
        "bad_verification_code",
        "redirect_uri_mismatch",
        "bad_verification_code",
        "bad_verification_code",
        null,
      ],
    );
  });
});

Deno.test("fake-github: full code flow with PKCE S256 (oauth4webapi helpers, plain fetch)", async () => {
  await withFake(async (gh) => {
    const verifier = oauth.generateRandomCodeVerifier();
    const challenge = await oauth.calculatePKCECodeChallenge(verifier);
    const state = oauth.generateRandomState();
    const authUrl = new URL(`${gh.webUrl}/login/oauth/authorize`);
    authUrl.search = new URLSearchParams({
      client_id: CLIENT_ID,
      redirect_uri: CALLBACK,
      scope: "read:org",
      state,
      code_challenge: challenge,
      code_challenge_method: "S256",
      allow_signup: "false",
    }).toString();
    const res = await fetch(authUrl, { redirect: "manual" });
    await res.body?.cancel();
    assert.equal(res.status, 302);
    const callback = new URL(res.headers.get("location")!);
    assert.equal(callback.searchParams.get("state"), state);

    const tokenRes = await fetch(`${gh.webUrl}/login/oauth/access_token`, {
      method: "POST",
      headers: {
        "accept": "application/json",
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        code: callback.searchParams.get("code")!,
        redirect_uri: CALLBACK,
        code_verifier: verifier,
      }),
    });
    const token = await tokenRes.json();
    assert.equal(token.token_type, "bearer");
    assert.equal(token.scope, "read:org");

    gh.setOrgMembership("acme", OCTO.id, "active");
    const me = await api(gh, "/user", token.access_token);
    assert.equal(me.status, 200);
    assert.equal(me.json?.id, OCTO.id);
    assert.equal(me.json?.login, "octocat");
    const org = await api(gh, "/user/memberships/orgs/acme", token.access_token);
    assert.equal(org.json?.state, "active");
    assert.equal(gh.authorizeRequests[0].codeChallengeMethod, "S256");
    assert.equal(gh.tokenRequests[0].params.code_verifier, verifier);
  });
});

Deno.test("fake-github: full code flow through oauth4webapi (allowInsecureRequests for http)", async () => {
  await withFake(async (gh) => {
    const as: oauth.AuthorizationServer = {
      issuer: "https://github.com",
      authorization_endpoint: `${gh.webUrl}/login/oauth/authorize`,
      token_endpoint: `${gh.webUrl}/login/oauth/access_token`,
    };
    const client: oauth.Client = { client_id: CLIENT_ID };
    const clientAuth = oauth.ClientSecretPost(CLIENT_SECRET);
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const authUrl = new URL(as.authorization_endpoint!);
    authUrl.search = new URLSearchParams({
      client_id: CLIENT_ID,
      redirect_uri: CALLBACK,
      scope: "read:org",
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    }).toString();
    const res = await fetch(authUrl, { redirect: "manual" });
    await res.body?.cancel();
    const params = oauth.validateAuthResponse(
      as,
      client,
      new URL(res.headers.get("location")!),
      state,
    );
    const tokenRes = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      clientAuth,
      params,
      CALLBACK,
      verifier,
      { [oauth.allowInsecureRequests]: true }, // the fake is http://127.0.0.1
    );
    const result = await oauth.processAuthorizationCodeResponse(as, client, tokenRes);
    assert.equal(result.token_type, "bearer");
    assert.equal(result.scope, "read:org");
    assert.match(result.access_token, /^gho_/);
    // oauth4webapi sends accept: application/json and client_secret_post in the form body.
    const rec = gh.tokenRequests.at(-1)!;
    assert.equal(rec.accept, "application/json");
    assert.equal(rec.params.client_secret, CLIENT_SECRET);

    // error=access_denied at the callback throws AuthorizationResponseError.
    gh.setCurrentUser(null);
    const denied = await fetch(authUrl, { redirect: "manual" });
    await denied.body?.cancel();
    assert.throws(
      () => oauth.validateAuthResponse(as, client, new URL(denied.headers.get("location")!), state),
      (err: unknown) =>
        err instanceof oauth.AuthorizationResponseError && err.error === "access_denied",
    );
  });
});

/*
 * How oauth4webapi 3.8.8 treats GitHub's 200-with-error token response (verified below):
 *
 * processAuthorizationCodeResponse(as, client, response) only looks for an OAuth error body when
 * the status is not 200 (checkOAuthBodyError). With 200 it parses the JSON and asserts
 * `access_token` is a string, so GitHub's `{error, error_description, error_uri}` with HTTP 200
 * throws:
 *   - class OperationProcessingError (not ResponseBodyError), `err instanceof
 *     oauth.OperationProcessingError === true`, `err.name === "OperationProcessingError"`;
 *   - `err.code === "OAUTH_INVALID_RESPONSE"` (=== oauth.INVALID_RESPONSE);
 *   - `err.message === '"response" body "access_token" property must be a string'`;
 *   - `err.cause` is `{ body: <the parsed JSON object> }`, so `err.cause.body.error` is e.g.
 *     "bad_verification_code" (and error_description / error_uri are there too).
 * If the response is form-encoded (no `Accept: application/json`), it throws
 * OperationProcessingError with code "OAUTH_RESPONSE_IS_NOT_JSON" instead (cause: the
 * SyntaxError) — but authorizationCodeGrantRequest always sends `accept: application/json`.
 * With a `[customFetch]` that rewrites a 200 carrying `error` into a 400, it throws
 * ResponseBodyError (code "OAUTH_RESPONSE_BODY_ERROR") with `err.error`, `err.error_description`,
 * `err.status === 400` and `err.cause` = the body.
 */
Deno.test("fake-github: oauth4webapi surfaces the 200-with-error body as OperationProcessingError", async () => {
  await withFake(async (gh) => {
    const as: oauth.AuthorizationServer = {
      issuer: "https://github.com",
      authorization_endpoint: `${gh.webUrl}/login/oauth/authorize`,
      token_endpoint: `${gh.webUrl}/login/oauth/access_token`,
    };
    const client: oauth.Client = { client_id: CLIENT_ID };
    // An unknown code: GitHub answers bad_verification_code with HTTP 200.
    const callbackParams = oauth.validateAuthResponse(
      as,
      client,
      new URL(`${CALLBACK}?code=0000000000ffffffffff`),
      oauth.skipStateCheck,
    );

    const res = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.ClientSecretPost(CLIENT_SECRET),
      callbackParams,
      CALLBACK,
      oauth.generateRandomCodeVerifier(),
      { [oauth.allowInsecureRequests]: true },
    );
    assert.equal(res.status, 200);
    const err = await oauth.processAuthorizationCodeResponse(as, client, res).then(
      () => assert.fail("expected a throw"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof oauth.OperationProcessingError);
    assert.equal(err.name, "OperationProcessingError");
    assert.equal(err.code, "OAUTH_INVALID_RESPONSE");
    assert.equal(err.code, oauth.INVALID_RESPONSE);
    assert.equal(err.message, '"response" body "access_token" property must be a string');
    assert.ok(!(err instanceof oauth.ResponseBodyError));
    const cause = err.cause as { body: Record<string, string> };
    assert.equal(cause.body.error, "bad_verification_code");
    assert.equal(cause.body.error_description, "The code passed is incorrect or expired.");
    assert.match(cause.body.error_uri, /bad-verification-code$/);

    // A form-encoded 200 error (as without Accept: application/json) is OAUTH_RESPONSE_IS_NOT_JSON.
    const formRes = new Response("error=bad_verification_code", {
      status: 200,
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    const formErr = await oauth.processAuthorizationCodeResponse(as, client, formRes).then(
      () => assert.fail("expected a throw"),
      (e: unknown) => e,
    );
    assert.ok(formErr instanceof oauth.OperationProcessingError);
    assert.equal(formErr.code, oauth.RESPONSE_IS_NOT_JSON);

    // The workaround: a customFetch that turns a 200 carrying `error` into a 400.
    const rewrite = async (url: string, init: RequestInit): Promise<Response> => {
      const r = await fetch(url, init);
      if (r.status !== 200 || !r.headers.get("content-type")?.includes("json")) return r;
      const text = await r.text();
      let status = 200;
      try {
        if (typeof JSON.parse(text).error === "string") status = 400;
      } catch { /* not JSON */ }
      return new Response(text, { status, headers: r.headers });
    };
    const res2 = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.ClientSecretPost("wrong-secret"),
      callbackParams,
      CALLBACK,
      oauth.generateRandomCodeVerifier(),
      { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: rewrite },
    );
    const err2 = await oauth.processAuthorizationCodeResponse(as, client, res2).then(
      () => assert.fail("expected a throw"),
      (e: unknown) => e,
    );
    assert.ok(err2 instanceof oauth.ResponseBodyError);
    assert.equal(err2.code, oauth.RESPONSE_BODY_ERROR);
    assert.equal(err2.error, "incorrect_client_credentials");
    assert.equal(err2.status, 400);
    assert.equal((err2.cause as Record<string, string>).error, "incorrect_client_credentials");
  });
});

Deno.test("fake-github: REST authentication, headers and Bad credentials", async () => {
  await withFake(async (gh) => {
    const token = await tokenFor(gh);
    const anon = await api(gh, "/user", null);
    assert.equal(anon.status, 401);
    assert.equal(anon.json?.message, "Requires authentication");
    const bogus = await api(gh, "/user", "gho_bogus");
    assert.equal(bogus.status, 401);
    assert.equal(bogus.json?.message, "Bad credentials");

    const bearer = await api(gh, "/user", token);
    assert.equal(bearer.status, 200);
    assert.equal(bearer.headers.get("x-oauth-scopes"), "read:org");
    assert.deepEqual(
      { login: bearer.json?.login, id: bearer.json?.id, type: bearer.json?.type },
      { login: "octocat", id: OCTO.id, type: "User" },
    );
    const legacy = await api(gh, "/user", token, { scheme: "token" });
    assert.equal(legacy.status, 200);

    // Headers are recorded for assertions.
    const rec = gh.apiRequests.at(-1)!;
    assert.equal(rec.path, "/api/v3/user");
    assert.equal(rec.headers["accept"], "application/vnd.github+json");
    assert.equal(rec.headers["x-github-api-version"], "2022-11-28");
    assert.equal(rec.headers["user-agent"], "mcp-oauth-proxy-test/0");
    assert.equal(rec.headers["authorization"], `token ${token}`);
    assert.equal(rec.status, 200);

    // Revocation (as when the user revokes the app): 401 Bad credentials.
    gh.revokeToken(token);
    const revoked = await api(gh, "/user", token);
    assert.equal(revoked.status, 401);
    assert.equal(revoked.json?.message, "Bad credentials");
    assert.equal(gh.tokenInfo(token)?.revoked, true);
    // A bad token fails even on public endpoints.
    assert.equal((await api(gh, "/users/octocat", token)).status, 401);

    // Missing User-Agent: 403 as on github.com. Unsupported API version: 400.
    const noUa = await api(gh, "/users/octocat", null, { headers: { "user-agent": "" } });
    assert.equal(noUa.status, 403);
    const badVersion = await api(gh, "/users/octocat", null, {
      headers: { "x-github-api-version": "1999-01-01" },
    });
    assert.equal(badVersion.status, 400);
  });
});

Deno.test("fake-github: /users/{login}, renames and deletions", async () => {
  await withFake(async (gh) => {
    const token = await tokenFor(gh);
    const byLogin = await api(gh, "/users/OctoCat", null);
    assert.equal(byLogin.status, 200, "logins are case-insensitive");
    assert.equal(byLogin.json?.id, OCTO.id);
    assert.equal(gh.apiRequests.at(-1)?.headers["authorization"], undefined);
    const missing = await api(gh, "/users/nobody", null);
    assert.equal(missing.status, 404);
    assert.equal(missing.json?.message, "Not Found");

    gh.renameUser(OCTO.id, "octo-renamed");
    assert.equal((await api(gh, "/users/octocat", null)).status, 404);
    const renamed = await api(gh, "/users/octo-renamed", null);
    assert.equal(renamed.json?.id, OCTO.id);
    assert.equal((await api(gh, "/user", token)).json?.login, "octo-renamed");
    // The old login can be re-registered by someone else: same login, different id.
    gh.addUser({ id: 999, login: "octocat" });
    assert.equal((await api(gh, "/users/octocat", null)).json?.id, 999);

    gh.deleteUser(OCTO.id);
    assert.equal((await api(gh, "/users/octo-renamed", null)).status, 404);
    const gone = await api(gh, "/user", token);
    assert.equal(gone.status, 401);
    assert.equal(gone.json?.message, "Bad credentials");
    assert.throws(() => gh.setCurrentUser(OCTO.id));
  });
});

Deno.test("fake-github: org membership: active, pending, none, restricted, missing scope", async () => {
  await withFake(async (gh) => {
    const token = await tokenFor(gh, "read:org");
    const path = "/user/memberships/orgs/acme";
    assert.equal((await api(gh, path, null)).status, 401);
    const none = await api(gh, path, token);
    assert.equal(none.status, 404);
    assert.equal(none.json?.message, "Not Found");

    gh.setOrgMembership("acme", OCTO.id, "active");
    const active = await api(gh, "/user/memberships/orgs/ACME", token);
    assert.equal(active.status, 200);
    assert.equal(active.json?.state, "active");
    assert.equal(active.json?.role, "member");
    assert.equal((active.json?.organization as { login: string }).login, "ACME");

    gh.setOrgMembership("acme", OCTO.id, "pending");
    assert.equal((await api(gh, path, token)).json?.state, "pending");

    gh.restrictOrg("acme", true);
    const restricted = await api(gh, path, token);
    assert.equal(restricted.status, 403);
    assert.match(String(restricted.json?.message), /OAuth App access restrictions/);
    gh.restrictOrg("acme", false);
    assert.equal((await api(gh, path, token)).status, 200);

    gh.setOrgMembership("acme", OCTO.id, null);
    assert.equal((await api(gh, path, token)).status, 404);

    // A token without read:org: 403.
    gh.setCurrentUser(HUBOT.id);
    const noScope = await tokenFor(gh, "");
    gh.setOrgMembership("acme", HUBOT.id, "active");
    const forbidden = await api(gh, path, noScope);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.headers.get("x-oauth-scopes"), "");
  });
});

Deno.test("fake-github: team membership: active, pending, 404s, restricted, missing scope", async () => {
  await withFake(async (gh) => {
    const token = await tokenFor(gh, "read:org");
    const path = "/orgs/acme/teams/core/memberships/octocat";
    assert.equal((await api(gh, path, null)).status, 401);
    // Not an org member: teams are invisible.
    gh.setTeamMembership("acme", "core", OCTO.id, "active");
    assert.equal((await api(gh, path, token)).status, 404);
    gh.setOrgMembership("acme", OCTO.id, "active");
    const ok = await api(gh, "/orgs/Acme/teams/CORE/memberships/OctoCat", token);
    assert.equal(ok.status, 200);
    assert.deepEqual([ok.json?.state, ok.json?.role], ["active", "member"]);

    gh.setTeamMembership("acme", "core", OCTO.id, "pending");
    assert.equal((await api(gh, path, token)).json?.state, "pending");
    gh.setTeamMembership("acme", "core", OCTO.id, null);
    assert.equal((await api(gh, path, token)).status, 404);
    assert.equal((await api(gh, "/orgs/acme/teams/core/memberships/nobody", token)).status, 404);
    // Another member's membership is visible to an org member.
    gh.setTeamMembership("acme", "core", HUBOT.id, "active");
    assert.equal((await api(gh, "/orgs/acme/teams/core/memberships/hubot", token)).status, 200);

    gh.restrictOrg("acme");
    assert.equal((await api(gh, "/orgs/acme/teams/core/memberships/hubot", token)).status, 403);
    gh.restrictOrg("acme", false);

    gh.setCurrentUser(HUBOT.id);
    const noScope = await tokenFor(gh, "");
    gh.setOrgMembership("acme", HUBOT.id, "active");
    assert.equal((await api(gh, "/orgs/acme/teams/core/memberships/hubot", noScope)).status, 403);
  });
});

Deno.test("fake-github: DELETE /applications/{client_id}/token revokes with HTTP Basic", async () => {
  await withFake(async (gh) => {
    const token = await tokenFor(gh);
    const del = (auth: string | null, body: unknown, clientId = CLIENT_ID) =>
      api(gh, `/applications/${clientId}/token`, null, {
        method: "DELETE",
        headers: {
          ...(auth ? { authorization: auth } : {}),
          "content-type": "application/json",
        },
        body: JSON.stringify(body),
      });
    const basic = `Basic ${btoa(`${CLIENT_ID}:${CLIENT_SECRET}`)}`;
    assert.equal((await del(null, { access_token: token })).status, 401);
    const wrong = await del(`Basic ${btoa(`${CLIENT_ID}:nope`)}`, { access_token: token });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json?.message, "Bad credentials");
    assert.equal((await del(`Bearer ${token}`, { access_token: token })).status, 401);
    assert.equal((await del(basic, {})).status, 422);
    assert.equal((await del(basic, { access_token: "gho_unknown" })).status, 404);
    assert.equal((await api(gh, "/user", token)).status, 200, "still valid");

    const ok = await del(basic, { access_token: token });
    assert.equal(ok.status, 204);
    assert.equal(ok.json, null);
    assert.equal((await api(gh, "/user", token)).status, 401);
    const rec = gh.apiRequests.find((r) => r.method === "DELETE" && r.status === 204)!;
    assert.deepEqual(JSON.parse(rec.body!), { access_token: token });
  });
});

Deno.test("fake-github: serveStatic serves documents (e.g. CIMD) and can be removed", async () => {
  await withFake(async (gh) => {
    const doc = JSON.stringify({ client_id: `${gh.webUrl}/client.json`, client_name: "Test" });
    gh.serveStatic("/client.json", doc, { "Cache-Control": "max-age=120" });
    const res = await fetch(`${gh.webUrl}/client.json?ignored=1`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(res.headers.get("cache-control"), "max-age=120");
    assert.equal(await res.text(), doc);

    gh.serveStatic("/bin", new Uint8Array([1, 2, 3]), {}, 203);
    const bin = await fetch(`${gh.webUrl}/bin`);
    assert.equal(bin.status, 203);
    assert.deepEqual([...new Uint8Array(await bin.arrayBuffer())], [1, 2, 3]);

    gh.unserveStatic("/client.json");
    const gone = await fetch(`${gh.webUrl}/client.json`);
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
  });
});

Deno.test("fake-github: injectFault fails matching requests a given number of times", async () => {
  await withFake(async (gh) => {
    const token = await tokenFor(gh);
    gh.injectFault({ path: "/api/v3/user", status: 502, times: 1 });
    assert.equal((await api(gh, "/user", token)).status, 502);
    assert.equal((await api(gh, "/user", token)).status, 200);
    gh.injectFault({ path: /^\/api\/v3\/users\//, method: "GET", status: 429 });
    assert.equal((await api(gh, "/users/octocat", null)).status, 429);
    gh.clearFaults();
    assert.equal((await api(gh, "/users/octocat", null)).status, 200);
    gh.clearRequests();
    assert.equal(gh.requests.length, 0);
  });
});

Deno.test("fake-github: opt-in expiring tokens and refresh (old pair invalidated)", async () => {
  const gh = await startFakeGitHub({
    apps: [{ clientId: "exp", clientSecret: "exp-secret", expiringTokens: true }],
    users: [OCTO],
    currentUserId: OCTO.id,
  });
  try {
    const code = (await authorize(gh, { client_id: "exp", redirect_uri: CALLBACK }))
      .location!.searchParams.get("code")!;
    const first = JSON.parse(
      (await exchange(gh, { client_id: "exp", client_secret: "exp-secret", code })).text,
    );
    assert.equal(first.expires_in, 28800);
    assert.match(first.refresh_token, /^ghr_/);
    const refreshed = JSON.parse(
      (await exchange(gh, {
        client_id: "exp",
        client_secret: "exp-secret",
        grant_type: "refresh_token",
        refresh_token: first.refresh_token,
      })).text,
    );
    assert.notEqual(refreshed.access_token, first.access_token);
    assert.equal((await api(gh, "/user", first.access_token)).status, 401);
    assert.equal((await api(gh, "/user", refreshed.access_token)).status, 200);
    const again = JSON.parse(
      (await exchange(gh, {
        client_id: "exp",
        client_secret: "exp-secret",
        grant_type: "refresh_token",
        refresh_token: first.refresh_token,
      })).text,
    );
    assert.equal(again.error, "bad_refresh_token");
    gh.advanceClock(28800 * 1000);
    assert.equal((await api(gh, "/user", refreshed.access_token)).status, 401, "expired");
  } finally {
    await gh.close();
  }
});
