/**
 * The login part of the config: `publicUrl`, `github`, `allow` and `oauth`.
 * With `github` present every MCP endpoint requires a token and `listen` may be any address.
 */
import {
  Checker,
  duration,
  type JsonObject,
  keyPath,
  knownKeys,
  OAuthConfigError,
  object,
  string,
  stringArray,
  typeName,
} from "./check.ts";
import { isRecord } from "../jsonrpc.ts";
import { isLoopbackHost } from "./hosts.ts";
import { validateClientMetadataHosts, validateRedirectUris } from "./oauth-rules.ts";

export interface GitHubConfig {
  clientId: string;
  clientSecret: string;
  /** e.g. https://github.com, or https://HOST for GitHub Enterprise Server. */
  webUrl: string;
  /** e.g. https://api.github.com, or https://HOST/api/v3. */
  apiUrl: string;
}

export interface AllowList {
  /** Numeric GitHub user ids. */
  ids: number[];
  /** Logins, lower-cased; resolved to ids and pinned in the store. */
  logins: string[];
  orgs: string[];
  teams: { org: string; slug: string }[];
}

export interface OAuthSettings {
  accessTokenTtlMs: number;
  refreshTokenTtlMs: number;
  grantTtlMs: number;
  /** An identical code redemption within this window gets the same answer (ChatGPT posts twice). */
  codeReuseWindowMs: number;
  /** A rotated refresh token stays usable this long (or until its successor is used). */
  refreshGraceMs: number;
  redirectUris: string[];
  clientMetadataHosts: string[];
}

export interface AuthConfig {
  /** The issuer and base of every advertised URL, without a trailing slash. */
  publicUrl: string;
  /** scheme://host[:port] of publicUrl. */
  origin: string;
  github: GitHubConfig;
  allow: AllowList;
  oauth: OAuthSettings;
}

export const OAUTH_DEFAULTS = {
  accessTokenTtlMs: 24 * 3_600_000,
  refreshTokenTtlMs: 30 * 86_400_000,
  grantTtlMs: 90 * 86_400_000,
};

export const AUTH_KEYS = ["publicUrl", "github", "allow", "oauth"] as const;
const GITHUB_KEYS = ["clientId", "clientSecret", "webUrl", "apiUrl"] as const;
const ALLOW_KEYS = ["users", "orgs", "teams"] as const;
const OAUTH_KEYS = [
  "accessTokenTtl",
  "refreshTokenTtl",
  "grantTtl",
  "codeReuseWindow",
  "refreshGrace",
  "redirectUris",
  "clientMetadataHosts",
] as const;

/** GitHub's login rule: alphanumerics and single inner hyphens, at most 39 characters. */
export const GITHUB_LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
const SLUG = /^[A-Za-z0-9._-]{1,100}$/;
const DAY = 86_400_000;

/** Reads the login keys; null when `github` is absent (then `allow` and `publicUrl` must be too). */
export function parseAuth(ck: Checker, root: JsonObject): AuthConfig | null {
  const github = object(ck, root.github, "github");
  if (!github) {
    for (const key of ["allow", "publicUrl", "oauth"]) {
      if (root[key] !== undefined) ck.fail(key, `only used with login: add a "github" section`);
    }
    return null;
  }
  knownKeys(ck, github, "github", GITHUB_KEYS);
  const publicUrl = parsePublicUrl(ck, root);
  const gh: GitHubConfig = {
    clientId: string(ck, github, "clientId", "github", { required: true }) ?? "",
    clientSecret: string(ck, github, "clientSecret", "github", { required: true }) ?? "",
    webUrl: serviceUrl(ck, github, "webUrl", "https://github.com"),
    apiUrl: serviceUrl(ck, github, "apiUrl", "https://api.github.com"),
  };
  const allow = parseAllow(ck, root);
  const oauth = parseOAuth(ck, root);
  if (!publicUrl) return null;
  return { publicUrl: publicUrl.href, origin: publicUrl.origin, github: gh, allow, oauth };
}

function parsePublicUrl(
  ck: Checker,
  root: JsonObject,
): { href: string; origin: string } | undefined {
  const text = string(ck, root, "publicUrl", "", { required: true });
  if (text === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return ck.fail("publicUrl", `expected an absolute URL such as "https://pi.tail1234.ts.net"`);
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopbackHost(url.hostname))) {
    return ck.fail(
      "publicUrl",
      "must be https (http only for 127.0.0.1, [::1] or localhost, which local clients use)",
    );
  }
  if (url.username || url.password || url.search || url.hash || text.includes("#")) {
    return ck.fail("publicUrl", "must not contain credentials, a query or a fragment");
  }
  // A secret path keeps untargeted scanners away: every endpoint lives under it.
  const path = url.pathname.replace(/\/+$/, "");
  if (path && !/^(\/[A-Za-z0-9._~-]+)+$/.test(path)) {
    return ck.fail("publicUrl", "the path may only hold letters, digits and . _ ~ - segments");
  }
  if (path.split("/").some((segment) => segment === "." || segment === "..")) {
    return ck.fail("publicUrl", "the path must not contain . or .. segments");
  }
  const endpoint = serverUrlPath(path);
  if (endpoint) return ck.fail("publicUrl", nestedServerUrl(url.origin, endpoint, root));
  // Canonical form (RFC 8414 issuer): lower-case scheme and host, no default port, no slash.
  return { href: url.origin + path, origin: url.origin };
}

/**
 * A path that ends like a server's URL (`/mcp` or `/mcp/NAME`): its base and that ending, or
 * undefined. Servers live at `<publicUrl>/mcp/<name>`, so such a publicUrl doubles the ending.
 */
function serverUrlPath(path: string): { base: string; ending: string } | undefined {
  const m = /^(.*?)(\/mcp(?:\/[^/]+)?)$/.exec(path);
  return m ? { base: m[1], ending: m[2] } : undefined;
}

function nestedServerUrl(
  origin: string,
  { base, ending }: { base: string; ending: string },
  root: JsonObject,
): string {
  const servers = isRecord(root.mcpServers) ? Object.keys(root.mcpServers) : [];
  const name = servers[0] ?? "NAME";
  return `ends in ${ending}, like a server's URL, but it is the proxy's base address: each ` +
    `server is served at <publicUrl>/mcp/<name>, so ${name} would be at ` +
    `${origin}${base}${ending}/mcp/${name}. Use "${origin}${base}"`;
}

function serviceUrl(ck: Checker, github: JsonObject, key: string, fallback: string): string {
  const text = string(ck, github, key, "github") ?? fallback;
  try {
    const url = new URL(text);
    const ok = url.protocol === "https:" ||
      (url.protocol === "http:" && isLoopbackHost(url.hostname));
    if (!ok || url.search || url.hash || url.username) throw new Error("bad");
    return url.href.replace(/\/+$/, "");
  } catch {
    ck.fail(keyPath("github", key), "expected an https URL (http only for loopback test servers)");
    return fallback;
  }
}

function parseAllow(ck: Checker, root: JsonObject): AllowList {
  const section = object(ck, root.allow, "allow");
  const allow = section ? parseAllowList(ck, section, "allow") : emptyAllowList();
  if (!ck.problems.some((p) => p.startsWith("allow")) && isEmptyAllowList(allow)) {
    ck.fail(
      "allow",
      "the allow-list is empty: list GitHub users (logins or numeric ids), orgs or teams " +
        "(the proxy never admits any GitHub user)",
    );
  }
  return allow;
}

/**
 * A server's own `allow` (same shape as the global one), which narrows the global allow-list
 * for that server; undefined when the entry has none. An empty one is refused: nobody could use
 * the server, so `disabled: true` says it better.
 */
export function parseServerAllow(
  ck: Checker,
  entry: JsonObject,
  path: string,
): AllowList | undefined {
  const at = keyPath(path, "allow");
  const section = object(ck, entry.allow, at);
  if (!section) return undefined;
  const failed = ck.problems.length;
  const allow = parseAllowList(ck, section, at);
  if (ck.problems.length === failed && isEmptyAllowList(allow)) {
    ck.fail(
      at,
      "empty: nobody could use this server. List GitHub users, orgs or teams (it narrows the " +
        'global "allow"), or remove the key to open the server to everyone on the global list',
    );
  }
  return allow;
}

function emptyAllowList(): AllowList {
  return { ids: [], logins: [], orgs: [], teams: [] };
}

function isEmptyAllowList(a: AllowList): boolean {
  return a.ids.length + a.logins.length + a.orgs.length + a.teams.length === 0;
}

/** Reads `users`, `orgs` and `teams` of an allow-list at `at` (`allow` or a server's `allow`). */
function parseAllowList(ck: Checker, section: JsonObject, at: string): AllowList {
  const allow = emptyAllowList();
  knownKeys(ck, section, at, ALLOW_KEYS);
  const users = section.users;
  if (users !== undefined && !Array.isArray(users)) {
    ck.fail(
      keyPath(at, "users"),
      `expected an array of GitHub logins and numeric ids, got ${typeName(users)}`,
    );
  } else {
    (users ?? []).forEach((user: unknown, i: number) => {
      const where = keyPath(keyPath(at, "users"), i);
      if (typeof user === "number" && Number.isSafeInteger(user) && user > 0) {
        allow.ids.push(user);
      } else if (typeof user === "string" && /^\d+$/.test(user)) allow.ids.push(Number(user));
      else if (typeof user === "string" && GITHUB_LOGIN.test(user)) {
        allow.logins.push(user.toLowerCase());
      } else {
        ck.fail(where, "expected a GitHub login or a numeric user id");
      }
    });
  }
  for (const [i, org] of (stringArray(ck, section, "orgs", at) ?? []).entries()) {
    if (GITHUB_LOGIN.test(org)) allow.orgs.push(org.toLowerCase());
    else ck.fail(keyPath(keyPath(at, "orgs"), i), "expected a GitHub organization login");
  }
  for (const [i, team] of (stringArray(ck, section, "teams", at) ?? []).entries()) {
    const [org, slug, extra] = team.split("/");
    if (extra === undefined && org && slug && GITHUB_LOGIN.test(org) && SLUG.test(slug)) {
      allow.teams.push({ org: org.toLowerCase(), slug: slug.toLowerCase() });
    } else ck.fail(keyPath(keyPath(at, "teams"), i), `expected "org/team-slug"`);
  }
  return allow;
}

function parseOAuth(ck: Checker, root: JsonObject): OAuthSettings {
  const section = isRecord(root.oauth) ? root.oauth : (object(ck, root.oauth, "oauth") ?? {});
  knownKeys(ck, section, "oauth", OAUTH_KEYS);
  const hosts = stringArray(ck, section, "clientMetadataHosts", "oauth") ?? [];
  const redirectUris = stringArray(ck, section, "redirectUris", "oauth") ?? [];
  // The same rules the OAuth modules apply when they are built, reported here at load time.
  try {
    validateRedirectUris(redirectUris);
    validateClientMetadataHosts(hosts);
  } catch (error) {
    if (!(error instanceof OAuthConfigError)) throw error;
    ck.fail(error.path, error.reason);
  }
  return {
    accessTokenTtlMs:
      duration(ck, section, "accessTokenTtl", "oauth", { min: 1000, max: 366 * DAY }) ??
        OAUTH_DEFAULTS.accessTokenTtlMs,
    refreshTokenTtlMs:
      duration(ck, section, "refreshTokenTtl", "oauth", { min: 1000, max: 366 * DAY }) ??
        OAUTH_DEFAULTS.refreshTokenTtlMs,
    grantTtlMs: duration(ck, section, "grantTtl", "oauth", { min: 1000, max: 3 * 366 * DAY }) ??
      OAUTH_DEFAULTS.grantTtlMs,
    codeReuseWindowMs:
      duration(ck, section, "codeReuseWindow", "oauth", { min: 1000, max: 300_000 }) ??
        30_000,
    refreshGraceMs: duration(ck, section, "refreshGrace", "oauth", { min: 1000, max: 3_600_000 }) ??
      60_000,
    redirectUris,
    clientMetadataHosts: hosts.map((h) => h.toLowerCase()),
  };
}
