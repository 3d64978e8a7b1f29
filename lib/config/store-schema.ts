/**
 * The `store` section: `{ "url": "postgres://user:password@host:5432/db" }` keeps the proxy's
 * state in PostgreSQL (several instances behind one public URL share it); without it, the state
 * is a Deno KV file in `dataDir`. The URL follows libpq's URI form: `postgres://` or
 * `postgresql://`, a user, a database, and optionally `?host=/run/postgresql` (a Unix socket
 * directory, with `&port=` when not 5432) and `?sslmode=disable|prefer|require|verify-full`.
 * @see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS
 */
import { type Checker, type JsonObject, knownKeys, object, string } from "./check.ts";

export type SslMode = "disable" | "prefer" | "require" | "verify-full";

/** A PostgreSQL store. The password is kept out of every message: use `redacted` there. */
export interface PostgresSettings {
  url: string;
  /** The URL with the password replaced by `***`. */
  redacted: string;
  user: string;
  password: string;
  database: string;
  /** TCP host and port (the port defaults to 5432), or... */
  host: string;
  port: number;
  /** ...a Unix socket directory (`?host=/dir`): the socket is `<dir>/.s.PGSQL.<port>`. */
  socketDir?: string;
  sslMode: SslMode;
}

export const STORE_KEYS = ["url"] as const;
const SSL_MODES: readonly SslMode[] = ["disable", "prefer", "require", "verify-full"];
const QUERY_KEYS = ["host", "port", "sslmode"];
const NO_HOST = "no-host.invalid";

/** Reads `store`; null means the default Deno KV store in `dataDir`. */
export function parseStore(ck: Checker, root: JsonObject): PostgresSettings | null | undefined {
  const section = object(ck, root.store, "store");
  if (!section) return null;
  knownKeys(ck, section, "store", STORE_KEYS);
  const url = string(ck, section, "url", "store", { required: true });
  if (url === undefined) return undefined;
  const parsed = parsePostgresUrl(url);
  if (typeof parsed === "string") return ck.fail("store.url", parsed);
  return parsed;
}

/** Parses a PostgreSQL URL; a string is the problem (it never contains the password). */
export function parsePostgresUrl(text: string): PostgresSettings | string {
  const hint = 'expected "postgres://USER:PASSWORD@HOST:5432/DATABASE"';
  // libpq allows an empty host (`postgres://user@/db?host=/dir`); WHATWG URL does not.
  const noHost = /^[a-z]+:\/\/(?:[^/?#@]*@)?(?=[/?])/i.exec(text);
  let url: URL;
  try {
    url = new URL(noHost ? noHost[0] + NO_HOST + text.slice(noHost[0].length) : text);
  } catch {
    return `not a URL: ${hint}`;
  }
  const redacted = redactUrl(url).replace(NO_HOST, "");
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    return `${redacted}: the scheme must be postgres:// or postgresql:// (${hint})`;
  }
  const user = decodeURIComponent(url.username);
  if (!user) return `${redacted}: name the database user (${hint})`;
  const database = decodeURIComponent(url.pathname.slice(1));
  if (!database || database.includes("/")) {
    return `${redacted}: name one database after the host (${hint})`;
  }
  for (const key of url.searchParams.keys()) {
    if (!QUERY_KEYS.includes(key)) {
      return `${redacted}: unknown parameter "${key}" (only ${QUERY_KEYS.join(" and ")})`;
    }
  }
  const socketDir = url.searchParams.get("host") ?? undefined;
  if (socketDir !== undefined && !socketDir.startsWith("/")) {
    return `${redacted}: host= must be a Unix socket directory (an absolute path)`;
  }
  const hostname = url.hostname === NO_HOST ? "" : url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!hostname && socketDir === undefined) {
    return `${redacted}: name the host, or a socket directory with ?host=/run/postgresql`;
  }
  const port = Number(url.port || (url.searchParams.get("port") ?? "5432"));
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return `${redacted}: the port must be a number from 1 to 65535`;
  }
  const sslMode = (url.searchParams.get("sslmode") ?? "prefer") as SslMode;
  if (!SSL_MODES.includes(sslMode)) {
    return `${redacted}: sslmode must be one of ${SSL_MODES.join(", ")}`;
  }
  return {
    url: text,
    redacted,
    user,
    password: decodeURIComponent(url.password),
    database,
    host: hostname,
    port,
    socketDir,
    sslMode: socketDir === undefined ? sslMode : "disable",
  };
}

/** The URL with its password replaced by `***` (for logs, errors and `check`). */
export function redactUrl(url: URL): string {
  if (!url.password) return url.href;
  const copy = new URL(url.href);
  copy.password = "***";
  return copy.href;
}

/**
 * The environment variables the PostgreSQL client library reads even when every setting is
 * given (its libpq-compatible defaults): the derived `--allow-env` includes them.
 */
export const POSTGRES_ENV = ["PGAPPNAME", "PGTARGETSESSIONATTRS", "PGPASSWORD"] as const;

/** What a PostgreSQL store needs from Deno: the server's host:port, or its Unix socket. */
export function storeAccess(
  settings: PostgresSettings,
): { net: string[]; socket: string[]; env: readonly string[] } {
  if (settings.socketDir) {
    return {
      net: [],
      socket: [`${settings.socketDir.replace(/\/$/, "")}/.s.PGSQL.${settings.port}`],
      env: POSTGRES_ENV,
    };
  }
  const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host;
  return { net: [`${host}:${settings.port}`], socket: [], env: POSTGRES_ENV };
}
