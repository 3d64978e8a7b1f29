/**
 * Open dynamic client registration: no initial access token, redirect URIs checked against the
 * policy, secrets returned once and stored hashed.
 * @see https://www.rfc-editor.org/rfc/rfc7591
 */
import { base64url, randomBytes, randomToken, sha256 } from "../crypto.ts";
import type { AuthMethod, ClientRecord } from "../store/kv.ts";
import { OAuthError, oauthJson, readText } from "./errors.ts";
import { RedirectUriError } from "./redirect.ts";
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

/** `POST /register`. */
export async function handleRegister(svc: OAuthService, req: Request): Promise<Response> {
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
  const meta = body as Record<string, unknown>;
  const redirectUris = checkRedirects(svc, meta.redirect_uris);
  const method = (meta.token_endpoint_auth_method ?? "client_secret_basic") as AuthMethod;
  if (!METHODS.includes(method)) {
    throw new OAuthError(
      "invalid_client_metadata",
      `token_endpoint_auth_method must be one of ${METHODS.join(", ")}`,
    );
  }
  const grantTypes = stringList(meta.grant_types, "grant_types") ?? ["authorization_code"];
  if (
    grantTypes.some((g) => !GRANT_TYPES.includes(g)) || !grantTypes.includes("authorization_code")
  ) {
    throw new OAuthError(
      "invalid_client_metadata",
      "grant_types may hold authorization_code and refresh_token",
    );
  }
  const responseTypes = stringList(meta.response_types, "response_types") ?? ["code"];
  if (responseTypes.some((r) => r !== "code")) {
    throw new OAuthError("invalid_client_metadata", "response_types may only hold code");
  }
  const sentName = meta.client_name;
  if (sentName !== undefined && (typeof sentName !== "string" || sentName.length > MAX_NAME)) {
    throw new OAuthError(
      "invalid_client_metadata",
      `client_name must be a string of at most ${MAX_NAME} characters`,
    );
  }
  // Stored, logged and echoed cleaned (RFC 7591 §3.2.1 lets the server replace a value).
  const name = typeof sentName === "string" ? cleanClientName(sentName) || undefined : undefined;
  const appType = meta.application_type;
  if (appType !== undefined && appType !== "native" && appType !== "web") {
    throw new OAuthError("invalid_client_metadata", "application_type must be native or web");
  }
  const metadata: Record<string, unknown> = {
    redirect_uris: redirectUris,
    token_endpoint_auth_method: method,
    grant_types: grantTypes,
    response_types: responseTypes,
  };
  if (name !== undefined) metadata.client_name = name;
  if (appType !== undefined) metadata.application_type = appType;
  for (const key of ECHOED) if (typeof meta[key] === "string") metadata[key] = meta[key];

  const now = svc.now();
  const clientId = `mop_client_${base64url(randomBytes(16))}`;
  const secret = method === "none" ? undefined : randomToken("mop_cs_");
  const record: ClientRecord = {
    clientId,
    secretHash: secret ? await sha256(secret) : undefined,
    authMethod: method,
    redirectUris,
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

function checkRedirects(svc: OAuthService, value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new OAuthError("invalid_redirect_uri", "redirect_uris must be a non-empty array");
  }
  if (value.length > MAX_REDIRECTS) {
    throw new OAuthError("invalid_redirect_uri", `at most ${MAX_REDIRECTS} redirect_uris`);
  }
  for (const uri of value) {
    if (typeof uri !== "string") {
      throw new OAuthError("invalid_redirect_uri", "redirect_uris must be strings");
    }
    try {
      svc.redirects.checkRegistration(uri);
    } catch (error) {
      if (error instanceof RedirectUriError) {
        throw new OAuthError("invalid_redirect_uri", `${uri.slice(0, 200)}: ${error.message}`);
      }
      throw error;
    }
  }
  return value as string[];
}

function stringList(value: unknown, name: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new OAuthError("invalid_client_metadata", `${name} must be an array of strings`);
  }
  return value as string[];
}
