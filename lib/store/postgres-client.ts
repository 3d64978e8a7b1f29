/**
 * The PostgreSQL client's settings for a store URL, its errors as StoreUnavailable (without the
 * password), and the read-only probe `check` runs.
 * @see https://github.com/porsager/postgres#connection-details
 */
import postgres from "postgres";
import { type PostgresSettings, storeAccess } from "../config/store-schema.ts";
import { MIGRATIONS } from "./postgres-schema.ts";
import { StoreUnavailable } from "./store.ts";

/** Every connection of an instance carries this prefix and the instance id. */
export const APPLICATION = "mcp-oauth-proxy ";
/**
 * The client options for a store URL, every one given, so that the library reads no environment
 * variable beyond POSTGRES_ENV (config/store-schema.ts).
 */
export function clientOptions(settings: PostgresSettings, instance: string) {
  return {
    host: settings.socketDir ?? settings.host,
    port: settings.port,
    path: storeAccess(settings).socket[0],
    user: settings.user,
    pass: settings.password || undefined,
    database: settings.database,
    max: 4,
    ssl: settings.sslMode === "disable" ? false : settings.sslMode,
    sslnegotiation: null,
    idle_timeout: 60,
    connect_timeout: 5,
    max_lifetime: null,
    max_pipeline: 100,
    backoff: (attempt: number) => Math.min(0.2 * 2 ** attempt, 5),
    keep_alive: 60,
    prepare: true,
    debug: false,
    fetch_types: false,
    publications: "alltables",
    target_session_attrs: null,
    connection: { application_name: APPLICATION + instance },
    onnotice: () => {},
  } as unknown as postgres.Options<Record<string, never>>;
}

/** Turns a driver error into StoreUnavailable naming the redacted URL (never the password). */
export function unavailable(settings: PostgresSettings, error: unknown): Error {
  if (error instanceof Deno.errors.NotCapable) return error;
  if (error instanceof StoreUnavailable) return error;
  let reason = error instanceof Error ? error.message : String(error);
  if (settings.password) reason = reason.replaceAll(settings.password, "***");
  if (/CONNECT_TIMEOUT|ECONNREFUSED|ENOENT|ENOTFOUND|EAI_AGAIN|refused/i.test(reason)) {
    reason = `the database server does not answer (${reason})`;
  }
  return new StoreUnavailable(settings.redacted, reason);
}

/**
 * What `check` says about a store URL without changing the database: whether it answers (with
 * the reason when not) and the schema version found there (0: empty, created at start).
 */
export async function probePostgres(
  settings: PostgresSettings,
): Promise<{ schema: number; latest: number } | { error: string }> {
  const sql = postgres({ ...clientOptions(settings, "check"), max: 1 });
  try {
    const [row] = await sql`SELECT to_regclass('mop_migrations') IS NOT NULL AS migrated`;
    const [found] = row.migrated
      ? await sql`SELECT coalesce(max(version), 0)::int AS version FROM mop_migrations`
      : [{ version: 0 }];
    return { schema: found.version as number, latest: MIGRATIONS.length };
  } catch (error) {
    const failure = unavailable(settings, error);
    if (!(failure instanceof StoreUnavailable)) throw failure;
    return { error: failure.reason };
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}
