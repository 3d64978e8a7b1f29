/**
 * A spent authorization code presented again (RFC 6749 §4.1.2): the first redemption's answer
 * decides, refusals included, and the repeat is answered without waiting for one.
 */
import assert from "node:assert/strict";
import { sha256 } from "../../../lib/crypto.ts";
import { OAuthError } from "../../../lib/oauth/errors.ts";
import { handleToken } from "../../../lib/oauth/token.ts";
import type { OAuthService } from "../../../lib/oauth/service.ts";
import { SERVICE_ORIGIN, withService } from "../../helpers/oauth-service.ts";

const CLIENT = {
  clientId: "c1",
  authMethod: "none" as const,
  redirectUris: ["http://127.0.0.1/cb"],
  metadata: {},
  createdAt: 0,
};
const VERIFIER = "v".repeat(43);
const CODE = "code-for-the-replay-test";

async function storeCode(svc: OAuthService): Promise<string> {
  const now = svc.now();
  const grant = {
    id: "g1",
    clientId: CLIENT.clientId,
    redirectUri: CLIENT.redirectUris[0],
    userId: 1,
    login: "octo",
    scope: "",
    resource: `${SERVICE_ORIGIN}/mcp/fx`,
    createdAt: now,
    expiresAt: now + 3_600_000,
  };
  await svc.store.putGrant(grant);
  const hash = await sha256(CODE);
  await svc.store.putCode(hash, {
    grantId: grant.id,
    clientId: CLIENT.clientId,
    redirectUri: grant.redirectUri,
    challenge: await sha256(VERIFIER),
    scope: "",
    resource: grant.resource,
    userId: 1,
    expiresAt: now + 60_000,
  });
  return hash;
}

/** The status and `error` of a redemption (OAuth errors become 400s at the route). */
async function redeem(svc: OAuthService, verifier: string): Promise<[number, string?]> {
  const res = await handleToken(
    svc,
    new Request(`${SERVICE_ORIGIN}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: CLIENT.clientId,
        code: CODE,
        code_verifier: verifier,
      }),
    }),
  ).catch((error) => {
    if (!(error instanceof OAuthError)) throw error;
    return Response.json({ error: error.code }, { status: 400 });
  });
  return [res.status, (await res.json()).error];
}

Deno.test("code replay: a refused first redemption is kept, and a repeat is refused at once", async () => {
  await withService([CLIENT], async (svc) => {
    const hash = await storeCode(svc);
    assert.deepEqual(await redeem(svc, "w".repeat(43)), [400, "invalid_grant"]);
    const answer = (await svc.store.getCode(hash))?.answer;
    assert.equal(answer?.refused, true, "the refusal is the code's answer");
    assert.equal(answer?.sealed, "", "nothing sealed");
    // The right verifier does not rescue a spent code, and the repeat reads the kept answer
    // instead of polling the store for one that would never come.
    let reads = 0;
    const getCode = svc.store.getCode.bind(svc.store);
    svc.store.getCode = (h) => (reads++, getCode(h));
    assert.deepEqual(await redeem(svc, VERIFIER), [400, "invalid_grant"]);
    assert.equal(reads, 0, "no wait for an answer");
    assert.ok((await svc.store.getGrant("g1"))?.revokedAt, "the grant is revoked on reuse");
  });
});

Deno.test("code replay: an identical repeat of a successful redemption gets the same tokens", async () => {
  await withService([CLIENT], async (svc) => {
    const hash = await storeCode(svc);
    const first = await redeem(svc, VERIFIER);
    assert.equal(first[0], 200);
    assert.equal((await svc.store.getCode(hash))?.answer?.refused, undefined);
    assert.equal((await redeem(svc, VERIFIER))[0], 200);
    assert.equal((await svc.store.getGrant("g1"))?.revokedAt, undefined);
  });
});
