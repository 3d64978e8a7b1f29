import assert from "node:assert/strict";
import { registeredMetadata, REGISTRATION_CHECKS } from "../../../lib/oauth/register.ts";
import { OAuthError } from "../../../lib/oauth/errors.ts";
import { RedirectPolicy } from "../../../lib/oauth/redirect.ts";

const policy = new RedirectPolicy({ extra: [] });
const VALID = { redirect_uris: ["http://127.0.0.1/cb"] };

/** Each refusal, in the order the checks run, with the metadata change that causes it. */
const REFUSALS: [Record<string, unknown>, string, string][] = [
  [{ redirect_uris: [] }, "invalid_redirect_uri", "redirect_uris must be a non-empty array"],
  [
    { redirect_uris: Array.from({ length: 11 }, (_, i) => `http://127.0.0.1/cb${i}`) },
    "invalid_redirect_uri",
    "at most 10 redirect_uris",
  ],
  [{ redirect_uris: [42] }, "invalid_redirect_uri", "redirect_uris must be strings"],
  [
    { redirect_uris: ["https://attacker.example/cb"] },
    "invalid_redirect_uri",
    "https://attacker.example/cb: is not on this server's allow-list (the operator can add it to oauth.redirectUris)",
  ],
  [
    { token_endpoint_auth_method: "private_key_jwt" },
    "invalid_client_metadata",
    "token_endpoint_auth_method must be one of none, client_secret_post, client_secret_basic",
  ],
  [
    { grant_types: "authorization_code" },
    "invalid_client_metadata",
    "grant_types must be an array of strings",
  ],
  [
    { grant_types: ["refresh_token"] },
    "invalid_client_metadata",
    "grant_types may hold authorization_code and refresh_token",
  ],
  [
    { response_types: [1] },
    "invalid_client_metadata",
    "response_types must be an array of strings",
  ],
  [{ response_types: ["token"] }, "invalid_client_metadata", "response_types may only hold code"],
  [
    { client_name: "x".repeat(201) },
    "invalid_client_metadata",
    "client_name must be a string of at most 200 characters",
  ],
  [
    { application_type: "browser" },
    "invalid_client_metadata",
    "application_type must be native or web",
  ],
];

function refusal(meta: Record<string, unknown>): [string, string] | null {
  try {
    registeredMetadata(meta, policy);
    return null;
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    return [error.code, error.description];
  }
}

Deno.test("register: each refusal, alone", () => {
  // Two checks have two cases each: the list's shape (empty, too long), its entries (not a
  // string, not allowed).
  assert.equal(REFUSALS.length, REGISTRATION_CHECKS.length + 2);
  for (const [change, code, description] of REFUSALS) {
    assert.deepEqual(refusal({ ...VALID, ...change }), [code, description], description);
  }
});

Deno.test("register: refusals in order, the earlier check wins", () => {
  for (let i = 0; i < REFUSALS.length; i++) {
    // This refusal's change over every later one's (an earlier change wins on the same field).
    const later = Object.assign({}, ...REFUSALS.slice(i + 1).map(([c]) => c).reverse());
    const [change, code, description] = REFUSALS[i];
    assert.deepEqual(refusal({ ...VALID, ...later, ...change }), [code, description], description);
  }
});

Deno.test("register: missing, null or non-array redirect_uris are refused first", () => {
  for (const redirect_uris of [undefined, null, "http://127.0.0.1/cb", {}]) {
    assert.deepEqual(refusal({ redirect_uris, grant_types: "x" }), [
      "invalid_redirect_uri",
      "redirect_uris must be a non-empty array",
    ]);
  }
});

Deno.test("register: defaults filled in, the name cleaned, optional strings echoed", () => {
  assert.deepEqual(registeredMetadata({ ...VALID, token_endpoint_auth_method: null }, policy), {
    redirect_uris: VALID.redirect_uris,
    token_endpoint_auth_method: "client_secret_basic",
    grant_types: ["authorization_code"],
    response_types: ["code"],
  });
  const meta = registeredMetadata({
    ...VALID,
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
    client_name: "  My\u202eApp\n ",
    application_type: "native",
    client_uri: "https://app.example",
    logo_uri: 7,
    scope: "mcp",
    jwks: { keys: [] },
  }, policy);
  assert.deepEqual(meta, {
    redirect_uris: VALID.redirect_uris,
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    client_name: "My App",
    application_type: "native",
    client_uri: "https://app.example",
    scope: "mcp",
  });
  // A name that cleans to nothing is not kept.
  assert.equal(
    registeredMetadata({ ...VALID, client_name: "\u200b " }, policy).client_name,
    undefined,
  );
});
