/**
 * Path matching of the public listener, pure: a path (after the secret path, if any) names one
 * route class, matched once. What each class may do (allow-list, rate limit, handler) is the
 * route table in server.ts.
 */
import {
  AUTHORIZATION_SERVER_PATHS,
  OPENID_CONFIGURATION_PATH,
  PROTECTED_RESOURCE_PATH as PRM,
} from "./oauth/well-known.ts";
import { jsonResponse } from "./mcp/http.ts";
import { MERGED_SERVER } from "./config/merged-schema.ts";

/** The route classes, as the access log and the allow-list know them. */
export type RouteKind =
  | "health"
  | "metadata"
  | "register"
  | "token"
  | "revoke"
  | "authorize"
  | "consent"
  | "callback"
  | "mcp"
  | "sse";

/** Where a request goes. `path` is the path as the handlers know it (without the secret path). */
export type Route =
  | { kind: Exclude<RouteKind, "mcp" | "sse">; path: string }
  | {
    kind: "mcp" | "sse";
    path: string;
    /** The server named by `/mcp/<name>` or `/sse/<name>`; the merged endpoint's for `/mcp`. */
    server: string;
    /** `/…/<name>/messages`: the legacy transport's POST endpoint. */
    messages: boolean;
  };

const OAUTH_PATHS = new Map<string, Exclude<RouteKind, "mcp" | "sse">>([
  ["/register", "register"],
  ["/token", "token"],
  ["/revoke", "revoke"],
  ["/authorize", "authorize"],
  ["/consent", "consent"],
  ["/auth/callback", "callback"],
]);

const MCP_PATH = /^\/(mcp|sse)\/([^/]+)(\/messages)?$/;

/**
 * The route of `path`, or null for an unknown path. `base` is the secret path ("" for none);
 * `local` is a caller on this machine, the only one that sees `/healthz` beside a secret path.
 * Discovery documents are found by inserting the secret path after the well-known prefix
 * (RFC 8414 §3, RFC 9728 §3.1); OpenID clients also append the well-known path to it.
 */
export function matchRoute(path: string, local: boolean, base: string): Route | null {
  if (path === "/healthz" && (base === "" || local)) return { kind: "health", path };
  if (path.startsWith("/.well-known/")) return matchWellKnown(path, base);
  if (base) {
    if (!path.startsWith(base + "/")) return null;
    path = path.slice(base.length);
    if (path === OPENID_CONFIGURATION_PATH) return { kind: "metadata", path };
    if (path === "/healthz") return { kind: "health", path };
  }
  const oauth = OAUTH_PATHS.get(path);
  if (oauth) return { kind: oauth, path };
  if (path === "/mcp") return { kind: "mcp", path, server: MERGED_SERVER, messages: false };
  const m = MCP_PATH.exec(path);
  if (!m) return null;
  return { kind: m[1] as "mcp" | "sse", path, server: m[2], messages: m[3] !== undefined };
}

function matchWellKnown(path: string, base: string): Route | null {
  const prm = PRM + base;
  if (path.startsWith(prm) && (path.length === prm.length || path[prm.length] === "/")) {
    return { kind: "metadata", path: PRM + path.slice(prm.length) };
  }
  for (const as of AUTHORIZATION_SERVER_PATHS) {
    if (path === as + base) return { kind: "metadata", path: as };
  }
  return null;
}

export { notFound } from "./mcp/http.ts";

/** 429 with Retry-After (RFC 6585 §4, RFC 9110 §10.2.3). */
export function tooMany(retryAfterS: number): Response {
  return jsonResponse(JSON.stringify({ error: "rate_limited" }), 429, {
    "retry-after": String(retryAfterS),
  });
}
