/**
 * The authorization server's paths, matched before the MCP endpoints. Metadata and the
 * machine-to-machine endpoints answer JSON only (errors included, never a redirect); the
 * browser endpoints answer HTML pages or redirects.
 */
import { handleAuthorize, handleConsent } from "./authorize.ts";
import { handleCallback } from "./callback.ts";
import { OAuthError, oauthErrorResponse, oauthJson, preflight } from "./errors.ts";
import { errorPage } from "./html.ts";
import {
  authorizationServerMetadata,
  type Endpoint,
  protectedResourceMetadata,
} from "./metadata.ts";
import { handleRegister } from "./register.ts";
import { handleRevoke } from "./revoke.ts";
import { handleToken } from "./token.ts";
import type { OAuthService } from "./service.ts";
import { AUTHORIZATION_SERVER_PATHS, PROTECTED_RESOURCE_PATH as PRM } from "./well-known.ts";
import { MERGED_SERVER } from "../config/merged-schema.ts";

const AS_PATHS = new Set<string>(AUTHORIZATION_SERVER_PATHS);

/**
 * Answers an OAuth path, or returns null when `path` is not one.
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 */
export function oauthRoute(
  svc: OAuthService,
  req: Request,
  path: string,
): Promise<Response> | Response | null {
  if (path === PRM || path.startsWith(`${PRM}/`)) {
    const rest = path.slice(PRM.length);
    if (rest === "/mcp" && svc.merged) {
      return metadata(req, () => protectedResourceMetadata(svc.auth, MERGED_SERVER));
    }
    const [, endpoint, server] = /^\/(mcp|sse)\/([^/]+)$/.exec(rest) ?? [];
    if (
      rest !== "" &&
      (!server || !svc.servers.some((s) => s.name === server) ||
        (endpoint === "sse" && !svc.legacySse))
    ) return null;
    return metadata(
      req,
      () => protectedResourceMetadata(svc.auth, server ?? null, endpoint as Endpoint),
    );
  }
  if (AS_PATHS.has(path)) return metadata(req, () => authorizationServerMetadata(svc.auth));
  switch (path) {
    case "/register":
      return api(svc, req, handleRegister);
    case "/token":
      return api(svc, req, handleToken);
    case "/revoke":
      return api(svc, req, handleRevoke);
    case "/authorize":
      return req.method === "GET" ? page(svc, req, handleAuthorize) : methodNotAllowed("GET");
    case "/consent":
      return req.method === "POST" ? page(svc, req, handleConsent) : methodNotAllowed("POST");
    case "/auth/callback":
      return req.method === "GET" ? page(svc, req, handleCallback) : methodNotAllowed("GET");
  }
  return null;
}

function metadata(req: Request, body: () => unknown): Response {
  if (req.method === "OPTIONS") return preflight();
  if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed("GET, OPTIONS");
  return oauthJson(body(), 200, { "cache-control": "max-age=300" });
}

async function api(
  svc: OAuthService,
  req: Request,
  handler: (svc: OAuthService, req: Request) => Promise<Response>,
): Promise<Response> {
  if (req.method === "OPTIONS") return preflight();
  if (req.method !== "POST") return methodNotAllowed("POST, OPTIONS");
  try {
    return await handler(svc, req);
  } catch (error) {
    if (error instanceof OAuthError) return oauthErrorResponse(error);
    svc.log.error("OAuth endpoint failed", {
      path: new URL(req.url).pathname,
      error: String(error),
    });
    return oauthJson({ error: "server_error", error_description: "internal error" }, 500);
  }
}

async function page(
  svc: OAuthService,
  req: Request,
  handler: (svc: OAuthService, req: Request) => Promise<Response>,
): Promise<Response> {
  try {
    return await handler(svc, req);
  } catch (error) {
    svc.log.error("authorization page failed", {
      path: new URL(req.url).pathname,
      error: String(error),
    });
    return errorPage(
      "Something went wrong",
      "The proxy could not complete this step. Try connecting again.",
      500,
    );
  }
}

function methodNotAllowed(allow: string): Response {
  return oauthJson({ error: "method_not_allowed" }, 405, { allow });
}
