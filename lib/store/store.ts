/**
 * The store interface: everything the proxy keeps beyond a process (clients, grants, token
 * hashes, codes, authorization requests, consents, login pins, keys, the last good IP-range
 * lists) and the record shapes. Two backends implement it: Deno KV in the data directory
 * (kv.ts, the default) and PostgreSQL (postgres.ts, for several instances). Secrets are stored
 * only as hashes or sealed with AES-GCM.
 */

export type AuthMethod = "none" | "client_secret_post" | "client_secret_basic";

export interface ClientRecord {
  clientId: string;
  secretHash?: string;
  authMethod: AuthMethod;
  redirectUris: string[];
  clientName?: string;
  /** The registration metadata echoed back to the client. */
  metadata: Record<string, unknown>;
  createdAt: number;
  /** Set once the client obtained a grant; such clients never expire. */
  grantedAt?: number;
}

export interface GrantRecord {
  id: string;
  clientId: string;
  redirectUri: string;
  userId: number;
  login: string;
  scope: string;
  resource: string;
  createdAt: number;
  /** Absolute end of the grant, whatever refreshes happen. */
  expiresAt: number;
  revokedAt?: number;
  revokedReason?: string;
}

export interface TokenRecord {
  kind: "access" | "refresh";
  grantId: string;
  clientId: string;
  userId: number;
  scope: string;
  resource: string;
  issuedAt: number;
  expiresAt: number;
  /** Refresh tokens: the pair issued when this one was used (sealed with a key only it derives). */
  successor?: { refreshHash: string; sealed: string; issuedAt: number };
}

export interface CodeRecord {
  grantId: string;
  clientId: string;
  redirectUri: string;
  challenge: string;
  scope: string;
  resource: string;
  userId: number;
  expiresAt: number;
  /** First redemption: when, and the hashes issued, so a replay can revoke them. */
  redeemedAt?: number;
  /** The first redemption's answer, for an identical request within the reuse window. */
  answer?: CodeAnswer;
}

/** A code's first answer, sealed with a key only the holder of the code and verifier derives. */
export interface CodeAnswer {
  /** Hash of every parameter that shapes the answer: an identical request has the same. */
  fingerprint: string;
  sealed: string;
  at: number;
  /** The first redemption was refused (nothing sealed): a repeat is refused at once. */
  refused?: boolean;
}

export interface TransactionRecord {
  id: string;
  clientId: string;
  redirectUri: string;
  challenge: string;
  scope: string;
  resource: string;
  state: string | null;
  createdAt: number;
  expiresAt: number;
  /** Set on approval: the upstream (GitHub) state and PKCE verifier. */
  upstream?: { state: string; verifier: string };
}

export interface ConsentRecord {
  userId: number;
  login: string;
  clientId: string;
  redirectUri: string;
  approvedAt: number;
}

export interface PinRecord {
  id: number;
  pinnedAt: number;
}

/** One proxy instance among several behind one public URL, with its last heartbeat. */
export interface InstanceRecord {
  id: string;
  /** Its internal origin, where other instances forward its requests. */
  url: string;
  startedAt: number;
  /** Its last heartbeat, ms since the epoch (its own clock). */
  seenAt: number;
}

/** A retrieved client metadata document (CIMD), shared by the instances until `expiresAt`. */
export interface CimdRecord {
  doc: Record<string, unknown>;
  expiresAt: number;
}

/** How long an authorization request waits for the user (and GitHub). */
export const TXN_TTL = 10 * 60_000;
/** A registered client that never obtained a grant is forgotten after 90 days. */
export const UNGRANTED_CLIENT_TTL = 90 * 86_400_000;
/** A redeemed code is kept this long after its redemption (to recognise a reuse). */
export const REDEEMED_CODE_TTL = 120_000;
/** An unredeemed code is kept this long past its expiry (to say "expired", not "unknown"). */
export const CODE_GRACE = 60_000;

/** The store cannot be created, opened or written (read-only disk, wrong owner, full disk). */
export class StoreUnavailable extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`the store ${path} cannot be used: ${reason}`);
    this.name = "StoreUnavailable";
  }
}

/** The answer to a control-epoch change: what the running proxy applied, and when. */
export interface Acknowledgement {
  epoch: number;
  at: number;
}

/** What `/healthz` details and `check` say about the store (never a password). */
export interface StoreDescription {
  backend: "kv" | "postgres";
  /** The KV file, or the database URL without its password. */
  location: string;
}

/** Typed access to the persistent store; both backends keep the same guarantees. */
export interface Store {
  /** Called after any grant or token is revoked (here, or on another instance of a shared store). */
  onRevoke: () => void;
  readonly description: StoreDescription;
  close(): Promise<void>;

  /** A persisted random 32-byte key; created once (by whichever instance asks first). */
  key(name: string): Promise<Uint8Array>;

  putClient(client: ClientRecord): Promise<void>;
  getClient(clientId: string): Promise<ClientRecord | null>;
  /** Deletes a client, revoking its grants (and their tokens) and dropping its approvals. */
  deleteClient(clientId: string, now?: number): Promise<void>;
  listClients(): Promise<ClientRecord[]>;

  putTransaction(txn: TransactionRecord): Promise<void>;
  getTransaction(id: string, now: number): Promise<TransactionRecord | null>;
  /** Takes the transaction an upstream state belongs to; the state is single-use. */
  takeUpstreamState(state: string, now: number): Promise<TransactionRecord | null>;

  putConsent(c: ConsentRecord): Promise<void>;
  listConsents(): Promise<ConsentRecord[]>;

  putGrant(grant: GrantRecord): Promise<void>;
  getGrant(id: string): Promise<GrantRecord | null>;
  listGrants(): Promise<GrantRecord[]>;
  grantsOfClient(clientId: string): Promise<GrantRecord[]>;
  grantsOfUser(userId: number): Promise<GrantRecord[]>;
  /** Marks a grant revoked and deletes every token issued under it; false if it was not live. */
  revokeGrant(id: string, reason: string, now: number): Promise<boolean>;

  putToken(hash: string, token: TokenRecord): Promise<void>;
  getToken(hash: string): Promise<TokenRecord | null>;
  /** Records a refresh token's successor only if none was recorded yet; returns the winner. */
  setSuccessor(
    hash: string,
    successor: NonNullable<TokenRecord["successor"]>,
  ): Promise<{ ok: boolean; current: TokenRecord | null }>;
  revokeTokens(hashes: string[], grantId: string): Promise<void>;

  putCode(hash: string, code: CodeRecord): Promise<void>;
  /** Marks a code redeemed; `first` is true for exactly one caller, whatever the concurrency. */
  redeemCode(hash: string, now: number): Promise<{ first: boolean; code: CodeRecord | null }>;
  getCode(hash: string): Promise<CodeRecord | null>;
  /** Records the first redemption's answer (every instance can repeat it). */
  putCodeAnswer(hash: string, answer: CodeAnswer): Promise<void>;

  getPin(login: string): Promise<PinRecord | null>;
  putPin(login: string, pin: PinRecord): Promise<void>;
  putGitHubToken(userId: number, sealed: string): Promise<void>;
  getGitHubToken(userId: number): Promise<string | null>;
  deleteGitHubToken(userId: number): Promise<void>;

  getCimd(clientId: string): Promise<CimdRecord | null>;
  putCimd(clientId: string, doc: Record<string, unknown>, expiresAt: number): Promise<void>;

  getDocument(url: string): Promise<{ text: string; fetchedAt: number } | null>;
  putDocument(url: string, text: string, fetchedAt: number): Promise<void>;

  /** Increments the control epoch (an owner command changed the store); returns the new value. */
  bumpEpoch(): Promise<number>;
  epoch(): Promise<number>;
  /**
   * Calls `onEpoch` with the current control epoch now and again whenever it changes (however
   * the backend learns of it); returns the function that stops watching.
   */
  watchEpoch(onEpoch: (epoch: number) => void, onError: (error: unknown) => void): () => void;
  /** Records that this running proxy applied everything up to `epoch`. */
  acknowledge(epoch: number, now: number): Promise<void>;
  /** The acknowledgement of the running proxies (the oldest one when there are several). */
  acknowledged(): Promise<Acknowledgement | null>;

  /** Registers (or refreshes the heartbeat of) an instance serving the same public URL. */
  putInstance(record: InstanceRecord): Promise<void>;
  deleteInstance(id: string): Promise<void>;
  listInstances(): Promise<InstanceRecord[]>;
}
