/**
 * The PostgreSQL store's schema and its migrations. Each migration runs once, in order, inside
 * one transaction that first takes a transaction-level advisory lock, so instances starting
 * together on an empty database wait for each other and the first one migrates; the others find
 * the versions recorded in `mop_migrations` and do nothing. A database migrated by a newer
 * proxy is refused (downgrade by restoring a backup).
 * @see https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
 */
import type postgres from "postgres";

/** The advisory lock key of the migrations (any constant unlikely to clash: "mop" + "schema"). */
export const MIGRATION_LOCK = 0x6d6f_7073_6368;

/** Migration N is MIGRATIONS[N - 1]. Never edit one that shipped: append a new one. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE mop_keys (name text PRIMARY KEY, value bytea NOT NULL);
  CREATE TABLE mop_clients (id text PRIMARY KEY, record jsonb NOT NULL, expires_at bigint);
  CREATE TABLE mop_transactions (
    id text PRIMARY KEY, record jsonb NOT NULL, expires_at bigint NOT NULL);
  CREATE TABLE mop_upstream_states (
    state text PRIMARY KEY, txn_id text NOT NULL, expires_at bigint NOT NULL);
  CREATE TABLE mop_consents (
    user_id bigint NOT NULL, client_id text NOT NULL, redirect_uri text NOT NULL,
    record jsonb NOT NULL, PRIMARY KEY (user_id, client_id, redirect_uri));
  CREATE TABLE mop_grants (
    id text PRIMARY KEY, client_id text NOT NULL, user_id bigint NOT NULL,
    record jsonb NOT NULL, expires_at bigint NOT NULL);
  CREATE INDEX mop_grants_client ON mop_grants (client_id);
  CREATE INDEX mop_grants_user ON mop_grants (user_id);
  CREATE TABLE mop_tokens (
    hash text PRIMARY KEY, grant_id text NOT NULL, record jsonb NOT NULL,
    expires_at bigint NOT NULL);
  CREATE INDEX mop_tokens_grant ON mop_tokens (grant_id);
  CREATE TABLE mop_codes (hash text PRIMARY KEY, record jsonb NOT NULL, expires_at bigint NOT NULL);
  CREATE TABLE mop_pins (login text PRIMARY KEY, record jsonb NOT NULL);
  CREATE TABLE mop_github_tokens (user_id bigint PRIMARY KEY, sealed text NOT NULL);
  CREATE TABLE mop_documents (url text PRIMARY KEY, body text NOT NULL, fetched_at bigint NOT NULL);
  CREATE TABLE mop_control (
    id int PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL, revocations bigint NOT NULL);
  INSERT INTO mop_control VALUES (1, 0, 0);
  CREATE TABLE mop_acks (instance text PRIMARY KEY, epoch bigint NOT NULL, at bigint NOT NULL);
  CREATE TABLE mop_instances (id text PRIMARY KEY, record jsonb NOT NULL);
  `,
  // 2: client metadata documents (CIMD) retrieved by any instance.
  `
  CREATE TABLE mop_cimd (
    client_id text PRIMARY KEY, record jsonb NOT NULL, expires_at bigint NOT NULL);
  `,
];

/** Tables whose rows carry `expires_at` (swept now and then; reads ignore expired rows). */
export const EXPIRING = [
  "mop_clients",
  "mop_transactions",
  "mop_upstream_states",
  "mop_grants",
  "mop_tokens",
  "mop_codes",
  "mop_cimd",
] as const;

/** The database was migrated by a newer proxy than this one. */
export class SchemaTooNew extends Error {
  override name = "SchemaTooNew";
}

/** Brings the schema up to date (idempotent; safe when several instances start at once). */
export async function migrate(sql: postgres.Sql, instance: string): Promise<number[]> {
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS mop_migrations (
      version int PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now(),
      applied_by text NOT NULL)`;
    const [row] = await tx`SELECT coalesce(max(version), 0)::int AS version FROM mop_migrations`;
    const current = row.version as number;
    if (current > MIGRATIONS.length) {
      throw new SchemaTooNew(
        `the database schema is version ${current}, newer than this proxy's ` +
          `(${MIGRATIONS.length}): run the newer proxy, or restore a backup taken before it`,
      );
    }
    const applied: number[] = [];
    for (let version = current + 1; version <= MIGRATIONS.length; version++) {
      await tx.unsafe(MIGRATIONS[version - 1]).simple();
      await tx`INSERT INTO mop_migrations (version, applied_by) VALUES (${version}, ${instance})`;
      applied.push(version);
    }
    return applied;
  });
}
