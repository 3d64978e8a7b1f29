import assert from "node:assert/strict";
import { authenticateClient } from "../../../lib/oauth/token.ts";
import { OAuthError } from "../../../lib/oauth/errors.ts";
import type { OAuthService } from "../../../lib/oauth/service.ts";
import { sha256 } from "../../../lib/crypto.ts";
import { SERVICE_ORIGIN, withService } from "../../helpers/oauth-service.ts";

const SECRET = "a b:c+d";
const client = (clientId: string, secretHash?: string) => ({
  clientId,
  secretHash,
  authMethod: secretHash ? "client_secret_basic" as const : "none" as const,
  redirectUris: ["http://127.0.0.1/cb"],
  metadata: {},
  createdAt: 0,
});

/** RFC 6749 §2.3.1: each part form-urlencoded, then joined with ":" and base64-encoded. */
function basic(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
  return `Basic ${btoa(`${enc(id)}:${enc(secret)}`)}`;
}

async function attempt(
  svc: OAuthService,
  form: Record<string, string>,
  authorization?: string,
): Promise<string | [string, number, string | null]> {
  const headers = authorization ? { authorization } : undefined;
  const req = new Request(`${SERVICE_ORIGIN}/token`, { method: "POST", headers });
  try {
    return (await authenticateClient(svc, req, new URLSearchParams(form))).clientId;
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    assert.equal(error.code, "invalid_client");
    return [error.description, error.status, error.headers["www-authenticate"] ?? null];
  }
}

async function withClients(fn: (svc: OAuthService) => Promise<void>): Promise<void> {
  await withService([
    client("mop_client_secret", await sha256(SECRET)),
    client("mop_client_public"),
  ], fn);
}

Deno.test("client auth: a secret client may use Basic or the form, with its one secret", async () => {
  await withClients(async (svc) => {
    assert.equal(await attempt(svc, {}, basic("mop_client_secret", SECRET)), "mop_client_secret");
    assert.equal(
      await attempt(svc, { client_id: "mop_client_secret" }, basic("mop_client_secret", SECRET)),
      "mop_client_secret",
    );
    assert.equal(
      await attempt(svc, { client_id: "mop_client_secret", client_secret: SECRET }),
      "mop_client_secret",
    );
  });
});

Deno.test("client auth: refusals are 401 invalid_client, with a Basic challenge only after Basic", async () => {
  const challenge = 'Basic realm="mcp-oauth-proxy"';
  await withClients(async (svc) => {
    assert.deepEqual(await attempt(svc, {}), ["client authentication is required", 401, null]);
    assert.deepEqual(
      await attempt(svc, { client_id: "mop_client_public" }, basic("mop_client_secret", SECRET)),
      ["client_id does not match the Basic credentials", 401, challenge],
    );
    assert.deepEqual(
      await attempt(svc, { client_id: "mop_client_gone" }),
      ["unknown client; register again", 401, null],
    );
    assert.deepEqual(
      await attempt(svc, {}, basic("mop_client_secret", "wrong")),
      ["wrong client secret", 401, challenge],
    );
    assert.deepEqual(
      await attempt(svc, { client_id: "mop_client_secret" }),
      ["wrong client secret", 401, null],
    );
    assert.deepEqual(
      await attempt(svc, { client_id: "mop_client_public", client_secret: "x" }),
      ["this client has no secret", 401, null],
    );
    assert.equal(await attempt(svc, { client_id: "mop_client_public" }), "mop_client_public");
  });
});

Deno.test("client auth: Basic parts are form-urlencoded (RFC 6749 §2.3.1); a raw one is wrong", async () => {
  await withClients(async (svc) => {
    const raw = `Basic ${btoa(`mop_client_secret:${SECRET}`)}`;
    assert.deepEqual((await attempt(svc, {}, raw)).slice(0, 2), ["wrong client secret", 401]);
    // A header that is not valid Basic (bad base64, no colon, bad percent-encoding) is ignored:
    // the form decides.
    for (const header of ["Basic !!!", `Basic ${btoa("no-colon")}`, `Basic ${btoa("id:%zz")}`]) {
      assert.equal(
        await attempt(svc, { client_id: "mop_client_public" }, header),
        "mop_client_public",
      );
    }
  });
});
