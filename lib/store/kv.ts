/**
 * The Deno KV backend of the store (the default): one file in the data directory. This module
 * owns every key shape and expiry of that file.
 */
import { randomBytes } from "../crypto.ts";
import { openKvFile } from "./kv-open.ts";
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

export type {
  AuthMethod,
  ClientRecord,
  CodeRecord,
  ConsentRecord,
  GrantRecord,
  InstanceRecord,
  PinRecord,
  Store,
  TokenRecord,
  TransactionRecord,
} from "./store.ts";
export { StoreUnavailable } from "./store.ts";

/** The store in a Deno KV file. */
export class KvStore implements Store {
  /** Called after any grant or token is revoked in this process (to drop cached checks). */
  onRevoke: () => void = () => {};
  readonly description: StoreDescription;

  private constructor(readonly kv: Deno.Kv, path: string) {
    this.description = { backend: "kv", location: path };
  }

  /**
   * Opens (or creates) the store file in `dataDir`; a data directory that cannot be created or
   * written is StoreUnavailable now (kv-open.ts), not at the first sign-in.
   */
  static async open(dataDir: string): Promise<KvStore> {
    const { kv, path } = await openKvFile(dataDir);
    return new KvStore(kv, path);
  }

  close(): Promise<void> {
    this.kv.close();
    return Promise.resolve();
  }

  /** A persisted random key; created once, never regenerated. */
  async key(name: string): Promise<Uint8Array> {
    const k = ["keys", name];
    const found = await this.kv.get<Uint8Array>(k);
    if (found.value) return found.value;
    const fresh = randomBytes(32);
    const res = await this.kv.atomic().check({ key: k, versionstamp: null }).set(k, fresh).commit();
    if (res.ok) return fresh;
    return (await this.kv.get<Uint8Array>(k)).value!;
  }

  // Clients.

  async putClient(client: ClientRecord): Promise<void> {
    const expireIn = client.grantedAt ? undefined : UNGRANTED_CLIENT_TTL;
    await this.kv.set(["clients", client.clientId], client, { expireIn });
  }

  async getClient(clientId: string): Promise<ClientRecord | null> {
    return (await this.kv.get<ClientRecord>(["clients", clientId])).value;
  }

  /** Deletes a client, revoking its grants (and their tokens) and dropping its approvals. */
  async deleteClient(clientId: string, now = Date.now()): Promise<void> {
    for (const grant of await this.grantsOfClient(clientId)) {
      await this.revokeGrant(grant.id, "client deleted", now);
    }
    await this.kv.delete(["clients", clientId]);
    for await (const e of this.kv.list<ConsentRecord>({ prefix: ["consents"] })) {
      if (e.value.clientId === clientId) await this.kv.delete(e.key);
    }
  }

  async listClients(): Promise<ClientRecord[]> {
    const out: ClientRecord[] = [];
    for await (const e of this.kv.list<ClientRecord>({ prefix: ["clients"] })) out.push(e.value);
    return out;
  }

  // Transactions (the authorization request between /authorize and the GitHub callback).

  async putTransaction(txn: TransactionRecord): Promise<void> {
    await this.kv.set(["txn", txn.id], txn, { expireIn: TXN_TTL });
    if (txn.upstream) {
      await this.kv.set(["upstream", txn.upstream.state], txn.id, { expireIn: TXN_TTL });
    }
  }

  async getTransaction(id: string, now: number): Promise<TransactionRecord | null> {
    const txn = (await this.kv.get<TransactionRecord>(["txn", id])).value;
    return txn && txn.expiresAt > now ? txn : null;
  }

  /** Takes the transaction an upstream state belongs to; the state is single-use. */
  async takeUpstreamState(state: string, now: number): Promise<TransactionRecord | null> {
    const entry = await this.kv.get<string>(["upstream", state]);
    if (!entry.value) return null;
    const res = await this.kv.atomic().check(entry).delete(["upstream", state]).commit();
    if (!res.ok) return null;
    const txn = await this.getTransaction(entry.value, now);
    if (txn) await this.kv.delete(["txn", txn.id]);
    return txn;
  }

  // Consents (server-side record of each approval, for audit and revocation).

  async putConsent(c: ConsentRecord): Promise<void> {
    await this.kv.set(["consents", c.userId, c.clientId, c.redirectUri], c);
  }

  async listConsents(): Promise<ConsentRecord[]> {
    const out: ConsentRecord[] = [];
    for await (const e of this.kv.list<ConsentRecord>({ prefix: ["consents"] })) out.push(e.value);
    return out;
  }

  // Grants and tokens.

  async putGrant(grant: GrantRecord): Promise<void> {
    const expireIn = Math.max(1000, grant.expiresAt - Date.now());
    await this.kv.atomic()
      .set(["grants", grant.id], grant, { expireIn })
      .set(["grants_by_user", grant.userId, grant.id], grant.id, { expireIn })
      .set(["grants_by_client", grant.clientId, grant.id], grant.id, { expireIn })
      .commit();
  }

  async getGrant(id: string): Promise<GrantRecord | null> {
    return (await this.kv.get<GrantRecord>(["grants", id])).value;
  }

  async listGrants(): Promise<GrantRecord[]> {
    const out: GrantRecord[] = [];
    for await (const e of this.kv.list<GrantRecord>({ prefix: ["grants"] })) out.push(e.value);
    return out;
  }

  grantsOfClient(clientId: string): Promise<GrantRecord[]> {
    return this.#grantsBy(["grants_by_client", clientId]);
  }

  grantsOfUser(userId: number): Promise<GrantRecord[]> {
    return this.#grantsBy(["grants_by_user", userId]);
  }

  async #grantsBy(prefix: Deno.KvKey): Promise<GrantRecord[]> {
    const out: GrantRecord[] = [];
    for await (const e of this.kv.list<string>({ prefix })) {
      const grant = await this.getGrant(e.value);
      if (grant) out.push(grant);
    }
    return out;
  }

  /** Marks a grant revoked and deletes every token issued under it. */
  async revokeGrant(id: string, reason: string, now: number): Promise<boolean> {
    const grant = await this.getGrant(id);
    if (!grant) return false;
    const wasLive = !grant.revokedAt;
    if (wasLive) await this.putGrant({ ...grant, revokedAt: now, revokedReason: reason });
    for await (const e of this.kv.list<string>({ prefix: ["tokens_by_grant", id] })) {
      await this.kv.atomic().delete(["tokens", e.key[2] as string]).delete(e.key).commit();
    }
    this.onRevoke();
    return wasLive;
  }

  async putToken(hash: string, token: TokenRecord): Promise<void> {
    const expireIn = Math.max(1000, token.expiresAt - Date.now());
    await this.kv.atomic()
      .set(["tokens", hash], token, { expireIn })
      .set(["tokens_by_grant", token.grantId, hash], token.kind, { expireIn })
      .commit();
  }

  async getToken(hash: string): Promise<TokenRecord | null> {
    return (await this.kv.get<TokenRecord>(["tokens", hash])).value;
  }

  /** Records a refresh token's successor only if none was recorded yet; returns the winner. */
  async setSuccessor(
    hash: string,
    successor: NonNullable<TokenRecord["successor"]>,
  ): Promise<{ ok: boolean; current: TokenRecord | null }> {
    const entry = await this.kv.get<TokenRecord>(["tokens", hash]);
    if (!entry.value || entry.value.successor) return { ok: false, current: entry.value };
    const updated = { ...entry.value, successor };
    const expireIn = Math.max(1000, updated.expiresAt - Date.now());
    const res = await this.kv.atomic().check(entry).set(["tokens", hash], updated, { expireIn })
      .commit();
    return res.ok
      ? { ok: true, current: updated }
      : { ok: false, current: await this.getToken(hash) };
  }

  async revokeTokens(hashes: string[], grantId: string): Promise<void> {
    for (const hash of hashes) {
      await this.kv.atomic().delete(["tokens", hash]).delete(["tokens_by_grant", grantId, hash])
        .commit();
    }
    this.onRevoke();
  }

  // Authorization codes.

  async putCode(hash: string, code: CodeRecord): Promise<void> {
    await this.kv.set(["codes", hash], code, {
      expireIn: Math.max(1000, code.expiresAt - Date.now()) + CODE_GRACE,
    });
  }

  /** Marks a code redeemed; false if it was already redeemed (or is gone). */
  async redeemCode(
    hash: string,
    now: number,
  ): Promise<{ first: boolean; code: CodeRecord | null }> {
    const entry = await this.kv.get<CodeRecord>(["codes", hash]);
    if (!entry.value) return { first: false, code: null };
    if (entry.value.redeemedAt) return { first: false, code: entry.value };
    const updated = { ...entry.value, redeemedAt: now };
    const res = await this.kv.atomic().check(entry).set(["codes", hash], updated, {
      expireIn: REDEEMED_CODE_TTL,
    }).commit();
    return res.ok
      ? { first: true, code: updated }
      : { first: false, code: (await this.kv.get<CodeRecord>(["codes", hash])).value };
  }

  async getCode(hash: string): Promise<CodeRecord | null> {
    return (await this.kv.get<CodeRecord>(["codes", hash])).value;
  }

  async putCodeAnswer(hash: string, answer: CodeAnswer): Promise<void> {
    for (;;) {
      const entry = await this.kv.get<CodeRecord>(["codes", hash]);
      if (!entry.value) return;
      const res = await this.kv.atomic().check(entry)
        .set(["codes", hash], { ...entry.value, answer }, { expireIn: REDEEMED_CODE_TTL })
        .commit();
      if (res.ok) return;
    }
  }

  // GitHub login pins and tokens.

  async getPin(login: string): Promise<PinRecord | null> {
    return (await this.kv.get<PinRecord>(["pins", login.toLowerCase()])).value;
  }

  async putPin(login: string, pin: PinRecord): Promise<void> {
    await this.kv.set(["pins", login.toLowerCase()], pin);
  }

  async putGitHubToken(userId: number, sealed: string): Promise<void> {
    await this.kv.set(["github_tokens", userId], sealed);
  }

  async getGitHubToken(userId: number): Promise<string | null> {
    return (await this.kv.get<string>(["github_tokens", userId])).value;
  }

  async deleteGitHubToken(userId: number): Promise<void> {
    await this.kv.delete(["github_tokens", userId]);
  }

  // Client metadata documents (CIMD) until their cache lifetime ends.

  async getCimd(clientId: string): Promise<CimdRecord | null> {
    return (await this.kv.get<CimdRecord>(["cimd", clientId])).value;
  }

  async putCimd(clientId: string, doc: Record<string, unknown>, expiresAt: number): Promise<void> {
    const expireIn = Math.max(1000, expiresAt - Date.now());
    await this.kv.set(["cimd", clientId], { doc, expiresAt }, { expireIn });
  }

  // Last good copies of downloaded documents (IP-range lists).

  async getDocument(url: string): Promise<{ text: string; fetchedAt: number } | null> {
    return (await this.kv.get<{ text: string; fetchedAt: number }>(["documents", url])).value;
  }

  async putDocument(url: string, text: string, fetchedAt: number): Promise<void> {
    await this.kv.set(["documents", url], { text, fetchedAt });
  }

  // Owner commands run in another process: they bump the epoch, the running proxy notices
  // within a fraction of a second, drops its caches and acknowledges. The proxy reads the epoch
  // on a short interval rather than with Deno.Kv.watch: on the SQLite backend (deno 2.9.6) a
  // watch sees only the writes of its own process, never a set by another process on the same
  // file, so a revocation by the owner command would go unnoticed.

  /** Increments the control epoch; returns the new value. */
  async bumpEpoch(): Promise<number> {
    for (;;) {
      const entry = await this.kv.get<number>(["control", "epoch"]);
      const next = (entry.value ?? 0) + 1;
      const res = await this.kv.atomic().check(entry).set(["control", "epoch"], next).commit();
      if (res.ok) return next;
    }
  }

  async epoch(): Promise<number> {
    return (await this.kv.get<number>(["control", "epoch"])).value ?? 0;
  }

  /** Records that the running proxy applied everything up to `epoch`. */
  async acknowledge(epoch: number, now: number): Promise<void> {
    await this.kv.set(["control", "ack"], { epoch, at: now });
  }

  async acknowledged(): Promise<Acknowledgement | null> {
    return (await this.kv.get<Acknowledgement>(["control", "ack"])).value;
  }

  /** Polls the epoch every 200 ms (owner commands run in another process). */
  watchEpoch(onEpoch: (epoch: number) => void, onError: (error: unknown) => void): () => void {
    let seen: number | undefined;
    let busy = false;
    const poll = async () => {
      if (busy) return;
      busy = true;
      try {
        const epoch = await this.epoch();
        if (epoch !== seen) {
          seen = epoch;
          onEpoch(epoch);
        }
      } catch (error) {
        onError(error);
      } finally {
        busy = false;
      }
    };
    poll();
    const timer = setInterval(poll, 200);
    return () => clearInterval(timer);
  }

  // Instances serving one public URL: each keeps its entry fresh with a heartbeat.

  async putInstance(record: InstanceRecord): Promise<void> {
    await this.kv.set(["instances", record.id], record);
  }

  async deleteInstance(id: string): Promise<void> {
    await this.kv.delete(["instances", id]);
  }

  async listInstances(): Promise<InstanceRecord[]> {
    const out: InstanceRecord[] = [];
    for await (const e of this.kv.list<InstanceRecord>({ prefix: ["instances"] })) {
      out.push(e.value);
    }
    return out;
  }
}
