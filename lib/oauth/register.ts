/**
 * Open dynamic client registration: no initial access token, redirect URIs checked against the
 * policy, secrets returned once and stored hashed.
 * @see https://www.rfc-editor.org/rfc/rfc7591
 */
import { base64url, randomBytes, randomToken, sha256 } from "../crypto.ts";
import type { AuthMethod, ClientRecord } from "../store/store.ts";
import { OAuthError, oauthJson, readText } from "./errors.ts";
import type { RedirectPolicy } from "./redirect.ts";
import { RedirectUriError } from "../net/redirect-uri.ts";
import type { OAuthService } from "./service.ts";
import { cleanClientName } from "./client-name.ts";

const MAX_BODY = 16 * 1024;
const MAX_REDIRECTS = 10;
const MAX_NAME = 200;
const METHODS: AuthMethod[] = ["none", "client_secret_post", "client_secret_basic"];
const GRANT_TYPES = ["authorization_code", "refresh_token"];
/** Optional metadata kept and echoed as sent, when it is a string. */
const ECHOED = [
  "client_uri",
  "logo_uri",
  "tos_uri",
  "policy_uri",
  "software_id",
  "software_version",
  "scope",
];

/** A registration check: the error for this metadata, or null when it passes. */
export type RegistrationCheck = (
  meta: Record<string, unknown>,
  redirects: Pick<RedirectPolicy, "checkRegistration">,
) => OAuthError | null;

const metadataError = (description: string) =>
  new OAuthError("invalid_client_metadata", description);
const redirectError = (description: string) => new OAuthError("invalid_redirect_uri", description);

/**
 * The registration checks, in order: the first error wins.
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2
 */
export const REGISTRATION_CHECKS: readonly RegistrationCheck[] = [
  ({ redirect_uris: uris }) =>
    !Array.isArray(uris) || uris.length === 0
      ? redirectError("redirect_uris must be a non-empty array")
      : uris.length > MAX_REDIRECTS
      ? redirectError(`at most ${MAX_REDIRECTS} redirect_uris`)
      : null,
  ({ redirect_uris }, redirects) => {
    for (const uri of redirect_uris as unknown[]) {
      if (typeof uri !== "string") return redirectError("redirect_uris must be strings");
      try {
        redirects.checkRegistration(uri);
      } catch (error) {
        if (!(error instanceof RedirectUriError)) throw error;
        return redirectError(`${uri.slice(0, 200)}: ${error.message}`);
      }
    }
    return null;
  },
  ({ token_endpoint_auth_method: method }) =>
    METHODS.includes((method ?? "client_secret_basic") as AuthMethod)
      ? null
      : metadataError(`token_endpoint_auth_method must be one of ${METHODS.join(", ")}`),
  ({ grant_types }) => notStringList(grant_types, "grant_types"),
  ({ grant_types }) => {
    const types = (grant_types ?? ["authorization_code"]) as string[];
    return types.some((g) => !GRANT_TYPES.includes(g)) || !types.includes("authorization_code")
      ? metadataError("grant_types may hold authorization_code and refresh_token")
      : null;
  },
  ({ response_types }) => notStringList(response_types, "response_types"),
  ({ response_types }) =>
    ((response_types ?? ["code"]) as string[]).some((r) => r !== "code")
      ? metadataError("response_types may only hold code")
      : null,
  ({ client_name: name }) =>
    name !== undefined && (typeof name !== "string" || name.length > MAX_NAME)
      ? metadataError(`client_name must be a string of at most ${MAX_NAME} characters`)
      : null,
  ({ application_type: type }) =>
    type === undefined || type === "native" || type === "web"
      ? null
      : metadataError("application_type must be native or web"),
];

function notStringList(value: unknown, name: string): OAuthError | null {
  if (value === undefined) return null;
  return !Array.isArray(value) || value.some((v) => typeof v !== "string")
    ? metadataError(`${name} must be an array of strings`)
    : null;
}

/**
 * The metadata as registered: checked by {@link REGISTRATION_CHECKS} (throws the first error),
 * defaults filled in, the name cleaned, optional string fields kept as sent.
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 */
export function registeredMetadata(
  meta: Record<string, unknown>,
  redirects: Pick<RedirectPolicy, "checkRegistration">,
): Record<string, unknown> {
  for (const check of REGISTRATION_CHECKS) {
    const error = check(meta, redirects);
    if (error) throw error;
  }
  const metadata: Record<string, unknown> = {
    redirect_uris: meta.redirect_uris,
    token_endpoint_auth_method: meta.token_endpoint_auth_method ?? "client_secret_basic",
    grant_types: meta.grant_types ?? ["authorization_code"],
    response_types: meta.response_types ?? ["code"],
  };
  // Stored, logged and echoed cleaned (RFC 7591 §3.2.1 lets the server replace a value).
  const name = typeof meta.client_name === "string" ? cleanClientName(meta.client_name) : "";
  if (name) metadata.client_name = name;
  if (meta.application_type !== undefined) metadata.application_type = meta.application_type;
  for (const key of ECHOED) if (typeof meta[key] === "string") metadata[key] = meta[key];
  return metadata;
}

/**
 * `POST /register`: open registration; a secret (for the secret methods) is returned once.
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.1
 */
export async function handleRegister(svc: OAuthService, req: Request): Promise<Response> {
  const metadata = registeredMetadata(await readMetadata(svc, req), svc.redirects);
  const method = metadata.token_endpoint_auth_method as AuthMethod;
  const name = metadata.client_name as string | undefined;
  const now = svc.now();
  const clientId = `mop_client_${base64url(randomBytes(16))}`;
  const secret = method === "none" ? undefined : randomToken("mop_cs_");
  const record: ClientRecord = {
    clientId,
    secretHash: secret ? await sha256(secret) : undefined,
    authMethod: method,
    redirectUris: metadata.redirect_uris as string[],
    clientName: name,
    metadata,
    createdAt: now,
  };
  await svc.store.putClient(record);
  svc.log.info("client registered", { client: clientId, name: String(name ?? ""), method });
  const response: Record<string, unknown> = {
    client_id: clientId,
    client_id_issued_at: Math.floor(now / 1000),
    ...metadata,
  };
  if (secret) {
    response.client_secret = secret;
    response.client_secret_expires_at = 0;
  }
  return oauthJson(response, 201);
}

/** The request body: a JSON object, bounded in size and time. */
async function readMetadata(svc: OAuthService, req: Request): Promise<Record<string, unknown>> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    throw new OAuthError("invalid_client_metadata", "the body must be application/json");
  }
  let body: unknown;
  try {
    body = JSON.parse(await readText(req, MAX_BODY, svc.bodyTimeoutMs));
  } catch (error) {
    if (error instanceof OAuthError) throw error;
    throw new OAuthError("invalid_client_metadata", "the body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new OAuthError("invalid_client_metadata", "the body must be a JSON object");
  }
  return body as Record<string, unknown>;
}
