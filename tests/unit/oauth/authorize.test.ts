import assert from "node:assert/strict";
import { firstRefusal, handleAuthorize, REDIRECTED_CHECKS } from "../../../lib/oauth/authorize.ts";
import type { OAuthService } from "../../../lib/oauth/service.ts";
import { SERVICE_ORIGIN as ORIGIN, withService } from "../../helpers/oauth-service.ts";

const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VALID = {
  response_type: "code",
  client_id: "mop_client_test",
  redirect_uri: "http://127.0.0.1:5555/cb",
  code_challenge: CHALLENGE,
  code_challenge_method: "S256",
  state: "s1",
};
const audience = (resource: string | null) =>
  resource === null || resource === `${ORIGIN}/mcp/fx` ? ORIGIN : null;

function query(changes: Record<string, string | string[] | undefined> = {}): URLSearchParams {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...VALID, ...changes })) {
    for (const one of v === undefined ? [] : Array.isArray(v) ? v : [v]) q.append(k, one);
  }
  return q;
}

/** Each redirected refusal, in the order the checks run, with the change that causes it. */
const REDIRECTED: [Record<string, string | string[] | undefined>, string, string][] = [
  [{ state: "x".repeat(2049) }, "invalid_request", "state is too long"],
  [{ response_type: "token" }, "unsupported_response_type", "only response_type=code is supported"],
  [{ code_challenge: undefined }, "invalid_request", "code_challenge is required (PKCE)"],
  [{ code_challenge_method: "plain" }, "invalid_request", "code_challenge_method must be S256"],
  [{ code_challenge: "short" }, "invalid_request", "code_challenge is malformed"],
  [{ scope: "openid profile" }, "invalid_scope", "no supported scope requested (use mcp)"],
  [
    { resource: [`${ORIGIN}/mcp/fx`, ORIGIN] },
    "invalid_target",
    "only one resource may be requested",
  ],
  [
    { resource: "https://elsewhere.example/mcp" },
    "invalid_target",
    "resource is not an MCP endpoint of this proxy",
  ],
];

Deno.test("authorize: a valid request passes every redirected check", () => {
  assert.equal(firstRefusal(query(), audience), null);
  assert.equal(firstRefusal(query({ scope: "mcp offline_access unknown" }), audience), null);
  assert.equal(
    firstRefusal(query({ resource: `${ORIGIN}/mcp/fx`, state: undefined }), audience),
    null,
  );
  assert.equal(firstRefusal(query({ state: "x".repeat(2048) }), audience), null);
});

Deno.test("authorize: each redirected refusal, alone", () => {
  assert.equal(REDIRECTED.length, REDIRECTED_CHECKS.length, "one case per check");
  for (const [change, code, description] of REDIRECTED) {
    assert.deepEqual(firstRefusal(query(change), audience), [code, description], description);
  }
});

Deno.test("authorize: redirected refusals in order, the earlier check wins", () => {
  for (let i = 0; i < REDIRECTED.length; i++) {
    // Break this check and every later one: the refusal is this check's.
    const change = Object.assign({}, ...REDIRECTED.slice(i).map(([c]) => c).reverse());
    // Later changes must not undo an earlier one (e.g. a missing challenge and a short one).
    Object.assign(change, REDIRECTED[i][0]);
    const [, code, description] = REDIRECTED[i];
    assert.deepEqual(firstRefusal(query(change), audience), [code, description], description);
  }
});

const CLIENT = {
  clientId: VALID.client_id,
  authMethod: "none" as const,
  redirectUris: [VALID.redirect_uri],
  clientName: "Test",
  metadata: {},
  createdAt: 0,
};

async function authorize(svc: OAuthService, q: URLSearchParams) {
  const response = await handleAuthorize(svc, new Request(`${ORIGIN}/authorize?${q}`));
  const body = await response.text();
  const heading = /<h1>([^<]*)<\/h1>/.exec(body)?.[1];
  return { status: response.status, location: response.headers.get("location"), heading, body };
}

/** Each shown refusal (a page, never a redirect), in order, with the change that causes it. */
const SHOWN: [Record<string, string | string[] | undefined>, string, string][] = [
  [
    { state: ["a", "b"] },
    "Invalid request",
    `The parameter &#34;state&#34; appears more than once.`,
  ],
  [{ client_id: undefined }, "Invalid request", "client_id is missing."],
  [{ client_id: "mop_client_gone" }, "Unknown client", "is not registered"],
  [{ redirect_uri: undefined }, "Invalid request", "redirect_uri is missing."],
  [
    { redirect_uri: "https://attacker.example/cb" },
    "Invalid redirect URI",
    "is not registered for this client",
  ],
];

Deno.test("authorize: shown refusals are pages, in order, before any redirected one", async () => {
  await withService([CLIENT], async (svc) => {
    for (let i = 0; i < SHOWN.length; i++) {
      const [change, heading, text] = SHOWN[i];
      // This check's change, every later shown one's (an earlier one wins where two change the
      // same parameter), and a redirected-check failure.
      const later = Object.assign({}, ...SHOWN.slice(i + 1).map(([c]) => c).reverse());
      const page = await authorize(svc, query({ response_type: "token", ...later, ...change }));
      assert.equal(page.location, null, heading);
      assert.ok(page.status === 400, `${heading}: ${page.status}`);
      assert.equal(page.heading, heading);
      assert.ok(page.body.includes(text), `${heading}: ${text}`);
    }
  });
});

Deno.test("authorize: after the shown checks, refusals go back to the client with state and iss", async () => {
  await withService([CLIENT], async (svc) => {
    const answer = await authorize(svc, query({ code_challenge_method: "plain" }));
    assert.equal(answer.status, 302);
    const back = new URL(answer.location!);
    assert.equal(`${back.origin}${back.pathname}`, VALID.redirect_uri);
    assert.equal(back.searchParams.get("error"), "invalid_request");
    assert.equal(back.searchParams.get("state"), "s1");
    assert.equal(back.searchParams.get("iss"), ORIGIN);
    const valid = await authorize(svc, query());
    assert.equal(valid.status, 200);
    assert.match(valid.heading ?? "", /^Allow access to the MCP servers at proxy\.example\.com\?$/);
  });
});
