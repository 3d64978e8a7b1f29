/**
 * The `requestState` of a multi round-trip request: an AES-GCM sealed (encrypted and
 * integrity-protected) token binding the principal (user and OAuth client), the server, an
 * expiry, the original method with a digest of its parameters, and the handle of the call the
 * proxy keeps waiting at the child, with its round. Anything that fails to open or to match is
 * refused.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/mrtr#security-considerations
 */
import { deriveKey, open, randomBytes, seal, sha256 } from "../../crypto.ts";
import { isRecord } from "../../jsonrpc.ts";

/** What a state token asserts. */
export interface StateClaims {
  /** Routing identity ("anonymous" or "github:<id>"). */
  sub: string;
  /** OAuth client id ("" without login). */
  cid: string;
  server: string;
  method: string;
  /** sha256 of the canonical parameters (see `paramsDigest`). */
  digest: string;
  /** The waiting call. */
  handle: string;
  round: number;
  /** Expiry, ms since the epoch. */
  exp: number;
  /** The instance keeping the call waiting, when there are several. */
  inst?: string;
}

/** What the retry presenting a state must match. */
export type Expected = Omit<StateClaims, "handle" | "round" | "exp" | "inst">;

/** Why a presented state is refused. */
export type Refusal = "invalid" | "expired" | "principal" | "request";

/** Seals and opens request states with one key. */
export class StateSealer {
  constructor(private readonly key: CryptoKey) {}

  /** A sealer whose key is derived (HKDF) from `secret`, e.g. a key kept in the store. */
  static async fromSecret(secret: Uint8Array): Promise<StateSealer> {
    return new StateSealer(await deriveKey(secret, "mcp-request-state"));
  }

  /** A sealer with a random key, for a proxy without a store (states die with the process). */
  static ephemeral(): Promise<StateSealer> {
    return StateSealer.fromSecret(randomBytes(32));
  }

  seal(claims: StateClaims): Promise<string> {
    return seal(this.key, JSON.stringify(claims));
  }

  /** The claims of a valid state presented for `expected`, or why it is refused. */
  async open(
    text: string,
    expected: Expected,
    now = Date.now(),
  ): Promise<StateClaims | Refusal> {
    const plain = text.length <= 16_384 ? await open(this.key, text) : null;
    const claims = plain === null ? null : parseClaims(plain);
    if (!claims) return "invalid";
    if (claims.exp <= now) return "expired";
    if (claims.sub !== expected.sub || claims.cid !== expected.cid) return "principal";
    if (
      claims.server !== expected.server || claims.method !== expected.method ||
      claims.digest !== expected.digest
    ) {
      return "request";
    }
    return claims;
  }
}

function parseClaims(text: string): StateClaims | null {
  try {
    const v = JSON.parse(text);
    const strings = ["sub", "cid", "server", "method", "digest", "handle"];
    if (!isRecord(v) || strings.some((k) => typeof v[k] !== "string")) return null;
    if (typeof v.round !== "number" || typeof v.exp !== "number") return null;
    if (v.inst !== undefined && typeof v.inst !== "string") return null;
    return v as unknown as StateClaims;
  } catch {
    return null;
  }
}

/** Parameters that differ between a request and its retry, left out of the digest. */
const RETRY_FIELDS = new Set(["inputResponses", "requestState", "_meta"]);

/**
 * A digest of a request's salient parameters: everything but the retry's own fields and `_meta`,
 * serialised with sorted keys (basic/patterns/mrtr, "an identifier for the originating request").
 */
export function paramsDigest(params: Record<string, unknown>): Promise<string> {
  const salient: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) if (!RETRY_FIELDS.has(k)) salient[k] = v;
  return sha256(canonical(salient));
}

/** JSON with object keys sorted at every level. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
