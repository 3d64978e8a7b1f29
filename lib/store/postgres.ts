/**
 * The PostgreSQL backend of the store, for several proxy instances behind one public URL. It
 * keeps the guarantees of the KV backend with row-level atomic statements: a code is redeemed
 * once (`UPDATE … WHERE NOT redeemed RETURNING`), a refresh token gets one successor, an
 * upstream state is taken once (`DELETE … RETURNING`). Revocations and control-epoch changes
 * are announced with NOTIFY on one channel, so every instance drops its cached token checks at
 * once; a slow poll of the counters covers a dropped listening connection.
 * @see https://www.postgresql.org/docs/current/sql-notify.html
 * @see https://www.postgresql.org/docs/current/sql-listen.html
 */
import postgres from "postgres";
import { randomBytes } from "../crypto.ts";
import type { PostgresSettings } from "../config/store-schema.ts";
import { EXPIRING, migrate } from "./postgres-schema.ts";
import { APPLICATION, clientOptions, unavailable } from "./postgres-client.ts";
import {
  type Acknowledgement,
  type CimdRecord,
  type ClientRecord,
  CODE_GRACE,
  type CodeAnswer,
  type CodeRecord,
  type ConsentRecord,
  type GrantRecord,
  type InstanceRecord,
  type PinRecord,
  REDEEMED_CODE_TTL,
  type Store,
  type StoreDescription,
  type TokenRecord,
  type TransactionRecord,
  TXN_TTL,
  UNGRANTED_CLIENT_TTL,
} from "./store.ts";

/** The NOTIFY channel of revocations ("revoked") and control-epoch changes ("epoch"). */
export const CHANNEL = "mop_changes";
const SWEEP_MS = 15 * 60_000;
const POLL_MS = 5_000;

type Sql = postgres.Sql;
type Json = Record<string, unknown>;

/** The store in a PostgreSQL database. */
export class PgStore implements Store {
  onRevoke: () => void = () => {};
  readonly description: StoreDescription;
  readonly instance: string;
  readonly #sql: Sql;
  readonly #settings: PostgresSettings;
  #sweep?: ReturnType<typeof setInterval>;
  #stopWatching: () => void = () => {};
  #pollMs = POLL_MS;

  private constructor(sql: Sql, settings: PostgresSettings, instance: string) {
    this.#sql = sql;
    this.#settings = settings;
    this.instance = instance;
    this.description = { backend: "postgres", location: settings.redacted };
  }

  /**
   * Connects, migrates the schema (once, whoever starts first) and sweeps expired rows; a
   * database that cannot be reached or used is StoreUnavailable with the cause.
   */
  static async open(
    settings: PostgresSettings,
    options: { instance?: string; sweep?: boolean; pollMs?: number } = {},
  ): Promise<PgStore> {
    const instance = options.instance ?? crypto.randomUUID();
    const sql = postgres(clientOptions(settings, instance));
    const store = new PgStore(sql, settings, instance);
    store.#pollMs = options.pollMs ?? POLL_MS;
    try {
      await migrate(sql, instance);
      if (options.sweep !== false) {
        await store.sweep(Date.now());
        const timer = setInterval(() => store.sweep(Date.now()).catch(() => {}), SWEEP_MS);
        Deno.unrefTimer(timer as unknown as number);
        store.#sweep = timer;
      }
    } catch (error) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw unavailable(settings, error);
    }
    return store;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#stopWatching();
    await this.#sql`DELETE FROM mop_acks WHERE instance = ${this.instance}`.catch(() => {});
    await this.#sql.end({ timeout: 2 });
  }

  #json(value: object) {
    return this.#sql.json(value as postgres.JSONValue);
  }

  /** Deletes the rows past their expiry. */
  async sweep(now: number): Promise<void> {
    for (const table of EXPIRING) {
      await this.#sql`DELETE FROM ${this.#sql(table)} WHERE expires_at <= ${now}`;
    }
  }

  async key(name: string): Promise<Uint8Array> {
    const sql = this.#sql;
    await sql`INSERT INTO mop_keys (name, value) VALUES (${name}, ${randomBytes(32)})
      ON CONFLICT (name) DO NOTHING`;
    const [row] = await sql`SELECT value FROM mop_keys WHERE name = ${name}`;
    return new Uint8Array(row.value as Uint8Array);
  }

  // Clients.

  async putClient(client: ClientRecord): Promise<void> {
    const expires = client.grantedAt ? null : Date.now() + UNGRANTED_CLIENT_TTL;
    await this.#sql`INSERT INTO mop_clients (id, record, expires_at)
      VALUES (${client.clientId}, ${this.#json(client)}, ${expires})
      ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at`;
  }

  async getClient(clientId: string): Promise<ClientRecord | null> {
    return first(
      await this.#sql`SELECT record FROM mop_clients WHERE id = ${clientId}
        AND (expires_at IS NULL OR expires_at > ${Date.now()})`,
    );
  }

  async deleteClient(clientId: string, now = Date.now()): Promise<void> {
    for (const grant of await this.grantsOfClient(clientId)) {
      await this.revokeGrant(grant.id, "client deleted", now);
    }
    await this.#sql`DELETE FROM mop_clients WHERE id = ${clientId}`;
    await this.#sql`DELETE FROM mop_consents WHERE client_id = ${clientId}`;
  }

  async listClients(): Promise<ClientRecord[]> {
    return all(
      await this.#sql`SELECT record FROM mop_clients
        WHERE expires_at IS NULL OR expires_at > ${Date.now()} ORDER BY id`,
    );
  }

  // Transactions.

  async putTransaction(txn: TransactionRecord): Promise<void> {
    const expires = Date.now() + TXN_TTL;
    await this.#sql.begin(async (tx) => {
      await tx`INSERT INTO mop_transactions (id, record, expires_at)
        VALUES (${txn.id}, ${this.#json(txn)}, ${expires})
        ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at`;
      if (!txn.upstream) return;
      await tx`INSERT INTO mop_upstream_states (state, txn_id, expires_at)
        VALUES (${txn.upstream.state}, ${txn.id}, ${expires})
        ON CONFLICT (state) DO UPDATE SET txn_id = EXCLUDED.txn_id,
          expires_at = EXCLUDED.expires_at`;
    });
  }

  async getTransaction(id: string, now: number): Promise<TransactionRecord | null> {
    const txn = first<TransactionRecord>(
      await this.#sql`SELECT record FROM mop_transactions
        WHERE id = ${id} AND expires_at > ${Date.now()}`,
    );
    return txn && txn.expiresAt > now ? txn : null;
  }

  async takeUpstreamState(state: string, now: number): Promise<TransactionRecord | null> {
    const rows = await this.#sql`DELETE FROM mop_upstream_states
      WHERE state = ${state} AND expires_at > ${Date.now()} RETURNING txn_id`;
    if (!rows.length) return null;
    const txn = await this.getTransaction(rows[0].txn_id as string, now);
    if (txn) await this.#sql`DELETE FROM mop_transactions WHERE id = ${txn.id}`;
    return txn;
  }

  // Consents.

  async putConsent(c: ConsentRecord): Promise<void> {
    await this.#sql`INSERT INTO mop_consents (user_id, client_id, redirect_uri, record)
      VALUES (${c.userId}, ${c.clientId}, ${c.redirectUri}, ${this.#json(c)})
      ON CONFLICT (user_id, client_id, redirect_uri) DO UPDATE SET record = EXCLUDED.record`;
  }

  async listConsents(): Promise<ConsentRecord[]> {
    return all(
      await this.#sql`SELECT record FROM mop_consents ORDER BY user_id, client_id, redirect_uri`,
    );
  }

  // Grants and tokens.

  async putGrant(grant: GrantRecord): Promise<void> {
    await this.#putGrant(this.#sql, grant);
  }

  async #putGrant(sql: Sql | postgres.TransactionSql, grant: GrantRecord): Promise<void> {
    const expires = Math.max(Date.now() + 1000, grant.expiresAt);
    await sql`INSERT INTO mop_grants (id, client_id, user_id, record, expires_at)
      VALUES (${grant.id}, ${grant.clientId}, ${grant.userId}, ${this.#json(grant)}, ${expires})
      ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at`;
  }

  async getGrant(id: string): Promise<GrantRecord | null> {
    return first(
      await this.#sql`SELECT record FROM mop_grants
        WHERE id = ${id} AND expires_at > ${Date.now()}`,
    );
  }

  async listGrants(): Promise<GrantRecord[]> {
    return all(
      await this.#sql`SELECT record FROM mop_grants
        WHERE expires_at > ${Date.now()} ORDER BY id`,
    );
  }

  async grantsOfClient(clientId: string): Promise<GrantRecord[]> {
    return all(
      await this.#sql`SELECT record FROM mop_grants
        WHERE client_id = ${clientId} AND expires_at > ${Date.now()} ORDER BY id`,
    );
  }

  async grantsOfUser(userId: number): Promise<GrantRecord[]> {
    return all(
      await this.#sql`SELECT record FROM mop_grants
        WHERE user_id = ${userId} AND expires_at > ${Date.now()} ORDER BY id`,
    );
  }

  /** Revokes in one transaction; the NOTIFY reaches every instance when it commits. */
  async revokeGrant(id: string, reason: string, now: number): Promise<boolean> {
    const wasLive = await this.#sql.begin(async (tx) => {
      const grant = first<GrantRecord>(
        await tx`SELECT record FROM mop_grants
          WHERE id = ${id} AND expires_at > ${Date.now()} FOR UPDATE`,
      );
      if (!grant) return null;
      const live = !grant.revokedAt;
      if (live) await this.#putGrant(tx, { ...grant, revokedAt: now, revokedReason: reason });
      await tx`DELETE FROM mop_tokens WHERE grant_id = ${id}`;
      await announceRevocation(tx);
      return live;
    });
    if (wasLive === null) return false;
    this.onRevoke();
    return wasLive;
  }

  async putToken(hash: string, token: TokenRecord): Promise<void> {
    const expires = Math.max(Date.now() + 1000, token.expiresAt);
    await this.#sql`INSERT INTO mop_tokens (hash, grant_id, record, expires_at)
      VALUES (${hash}, ${token.grantId}, ${this.#json(token)}, ${expires})
      ON CONFLICT (hash) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at`;
  }

  async getToken(hash: string): Promise<TokenRecord | null> {
    return first(
      await this.#sql`SELECT record FROM mop_tokens
        WHERE hash = ${hash} AND expires_at > ${Date.now()}`,
    );
  }

  async setSuccessor(
    hash: string,
    successor: NonNullable<TokenRecord["successor"]>,
  ): Promise<{ ok: boolean; current: TokenRecord | null }> {
    const rows = await this.#sql`UPDATE mop_tokens
      SET record = jsonb_set(record, '{successor}', ${this.#json(successor)})
      WHERE hash = ${hash} AND NOT (record ? 'successor') AND expires_at > ${Date.now()}
      RETURNING record`;
    if (rows.length) return { ok: true, current: rows[0].record as TokenRecord };
    return { ok: false, current: await this.getToken(hash) };
  }

  async revokeTokens(hashes: string[], _grantId: string): Promise<void> {
    if (!hashes.length) return;
    await this.#sql.begin(async (tx) => {
      await tx`DELETE FROM mop_tokens WHERE hash IN ${tx(hashes)}`;
      await announceRevocation(tx);
    });
    this.onRevoke();
  }

  // Authorization codes.

  async putCode(hash: string, code: CodeRecord): Promise<void> {
    const expires = Math.max(Date.now() + 1000, code.expiresAt) + CODE_GRACE;
    await this.#sql`INSERT INTO mop_codes (hash, record, expires_at)
      VALUES (${hash}, ${this.#json(code)}, ${expires})
      ON CONFLICT (hash) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at`;
  }

  /** One atomic UPDATE: of concurrent redemptions on any instances, exactly one is first. */
  async redeemCode(
    hash: string,
    now: number,
  ): Promise<{ first: boolean; code: CodeRecord | null }> {
    const wall = Date.now();
    const rows = await this.#sql`UPDATE mop_codes
      SET record = record || jsonb_build_object('redeemedAt', ${now}::bigint),
        expires_at = ${wall + REDEEMED_CODE_TTL}
      WHERE hash = ${hash} AND NOT (record ? 'redeemedAt') AND expires_at > ${wall}
      RETURNING record`;
    if (rows.length) return { first: true, code: rows[0].record as CodeRecord };
    return { first: false, code: await this.getCode(hash) };
  }

  async getCode(hash: string): Promise<CodeRecord | null> {
    return first(
      await this.#sql`SELECT record FROM mop_codes
        WHERE hash = ${hash} AND expires_at > ${Date.now()}`,
    );
  }

  async putCodeAnswer(hash: string, answer: CodeAnswer): Promise<void> {
    await this.#sql`UPDATE mop_codes SET record = jsonb_set(record, '{answer}', ${
      this.#json(answer)
    }) WHERE hash = ${hash}`;
  }

  // GitHub login pins and tokens.

  async getPin(login: string): Promise<PinRecord | null> {
    return first(
      await this.#sql`SELECT record FROM mop_pins WHERE login = ${login.toLowerCase()}`,
    );
  }

  async putPin(login: string, pin: PinRecord): Promise<void> {
    await this.#sql`INSERT INTO mop_pins (login, record)
      VALUES (${login.toLowerCase()}, ${this.#json(pin)})
      ON CONFLICT (login) DO UPDATE SET record = EXCLUDED.record`;
  }

  async putGitHubToken(userId: number, sealed: string): Promise<void> {
    await this.#sql`INSERT INTO mop_github_tokens (user_id, sealed) VALUES (${userId}, ${sealed})
      ON CONFLICT (user_id) DO UPDATE SET sealed = EXCLUDED.sealed`;
  }

  async getGitHubToken(userId: number): Promise<string | null> {
    const [row] = await this.#sql`SELECT sealed FROM mop_github_tokens WHERE user_id = ${userId}`;
    return row ? row.sealed as string : null;
  }

  async deleteGitHubToken(userId: number): Promise<void> {
    await this.#sql`DELETE FROM mop_github_tokens WHERE user_id = ${userId}`;
  }

  // Client metadata documents (CIMD).

  async getCimd(clientId: string): Promise<CimdRecord | null> {
    return first(
      await this.#sql`SELECT record FROM mop_cimd
        WHERE client_id = ${clientId} AND expires_at > ${Date.now()}`,
    );
  }

  async putCimd(clientId: string, doc: Record<string, unknown>, expiresAt: number): Promise<void> {
    const expires = Math.max(Date.now() + 1000, expiresAt);
    await this.#sql`INSERT INTO mop_cimd (client_id, record, expires_at)
      VALUES (${clientId}, ${this.#json({ doc, expiresAt })}, ${expires})
      ON CONFLICT (client_id) DO UPDATE SET record = EXCLUDED.record,
        expires_at = EXCLUDED.expires_at`;
  }

  // Last good copies of downloaded documents.

  async getDocument(url: string): Promise<{ text: string; fetchedAt: number } | null> {
    const [row] = await this.#sql`SELECT body, fetched_at::float8 AS fetched_at
      FROM mop_documents WHERE url = ${url}`;
    return row ? { text: row.body as string, fetchedAt: row.fetched_at as number } : null;
  }

  async putDocument(url: string, text: string, fetchedAt: number): Promise<void> {
    await this.#sql`INSERT INTO mop_documents (url, body, fetched_at)
      VALUES (${url}, ${text}, ${fetchedAt})
      ON CONFLICT (url) DO UPDATE SET body = EXCLUDED.body, fetched_at = EXCLUDED.fetched_at`;
  }

  // The control epoch (owner commands) and revocations, announced on CHANNEL.

  async bumpEpoch(): Promise<number> {
    return await this.#sql.begin(async (tx) => {
      const [row] = await tx`UPDATE mop_control SET epoch = epoch + 1 WHERE id = 1
        RETURNING epoch::float8 AS epoch`;
      await tx`SELECT pg_notify(${CHANNEL}, 'epoch')`;
      return row.epoch as number;
    });
  }

  async epoch(): Promise<number> {
    return (await this.#counters()).epoch;
  }

  async #counters(): Promise<{ epoch: number; revocations: number }> {
    const [row] = await this.#sql`SELECT epoch::float8 AS epoch,
      revocations::float8 AS revocations FROM mop_control WHERE id = 1`;
    return { epoch: row.epoch as number, revocations: row.revocations as number };
  }

  /**
   * Follows CHANNEL: a revocation elsewhere calls `onRevoke`, an epoch change `onEpoch`. The
   * counters are read again when listening (re)starts and every few seconds, so a notification
   * lost with a connection is noticed anyway. The token check itself never queries.
   */
  watchEpoch(onEpoch: (epoch: number) => void, onError: (error: unknown) => void): () => void {
    let seen: { epoch: number; revocations: number } | undefined;
    let stopped = false;
    const check = async () => {
      try {
        const now = await this.#counters();
        if (stopped) return;
        if (seen && now.revocations !== seen.revocations) this.onRevoke();
        if (!seen || now.epoch !== seen.epoch) onEpoch(now.epoch);
        seen = now;
      } catch (error) {
        if (!stopped) onError(error);
      }
    };
    const listening = this.#sql.listen(CHANNEL, () => check(), () => check())
      .catch((error) => {
        onError(error);
        return null;
      });
    const timer = setInterval(check, this.#pollMs);
    Deno.unrefTimer(timer as unknown as number);
    this.#stopWatching = () => {
      stopped = true;
      clearInterval(timer);
      listening.then((l) => l?.unlisten()).catch(() => {});
    };
    return this.#stopWatching;
  }

  async acknowledge(epoch: number, now: number): Promise<void> {
    await this.#sql`INSERT INTO mop_acks (instance, epoch, at)
      VALUES (${this.instance}, ${epoch}, ${now})
      ON CONFLICT (instance) DO UPDATE SET epoch = EXCLUDED.epoch, at = EXCLUDED.at`;
  }

  /** The oldest acknowledgement among the instances connected now (pg_stat_activity). */
  async acknowledged(): Promise<Acknowledgement | null> {
    const [row] = await this.#sql`SELECT min(a.epoch)::float8 AS epoch, max(a.at)::float8 AS at
      FROM mop_acks a WHERE EXISTS (SELECT 1 FROM pg_stat_activity s
        WHERE s.application_name = ${APPLICATION} || a.instance)`;
    return row.epoch === null ? null : { epoch: row.epoch as number, at: row.at as number };
  }

  // Instances serving one public URL: each keeps its entry fresh with a heartbeat.

  async putInstance(record: InstanceRecord): Promise<void> {
    await this.#sql`INSERT INTO mop_instances (id, record) VALUES (${record.id}, ${
      this.#json(record)
    }) ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record`;
  }

  async deleteInstance(id: string): Promise<void> {
    await this.#sql`DELETE FROM mop_instances WHERE id = ${id}`;
  }

  async listInstances(): Promise<InstanceRecord[]> {
    return all(await this.#sql`SELECT record FROM mop_instances ORDER BY id`);
  }
}

/** Counts a revocation and tells every listening instance (delivered at commit). */
async function announceRevocation(tx: postgres.TransactionSql): Promise<void> {
  await tx`UPDATE mop_control SET revocations = revocations + 1 WHERE id = 1`;
  await tx`SELECT pg_notify(${CHANNEL}, 'revoked')`;
}

function first<T>(rows: readonly Json[]): T | null {
  return rows.length ? rows[0].record as T : null;
}

function all<T>(rows: readonly Json[]): T[] {
  return rows.map((row) => row.record as T);
}
