/**
 * What instances sign with their shared secret (HMAC-SHA-256, RFC 2104): the owner tag of a
 * session id, which names the instance holding the session, and the header of a forwarded
 * request, which proves to the owner that another instance sent it. A client can neither forge a
 * tag (to have a request sent to an instance of its choosing) nor call an internal listener.
 * https://www.rfc-editor.org/rfc/rfc2104
 */
import { base64url, Hmac, randomBytes, timingSafeEqual } from "../crypto.ts";

/** The header that carries a forwarded request's signature. */
export const PEER_HEADER = "x-mop-peer";
/** The header that carries the client's address, as the receiving instance's edge resolved it. */
export const CLIENT_IP_HEADER = "x-mop-client-ip";

/** How far a forwarded request's time may be from the owner's clock. */
export const PEER_SKEW_MS = 60_000;

/** Characters of a truncated MAC: 128 bits in base64url. */
const MAC_CHARS = 22;
const ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A fresh instance id: 96 random bits, base64url (valid in a session id and a header). */
export function newInstanceId(): string {
  return base64url(randomBytes(12));
}

/** Signs and checks session owner tags and forwarded requests with the shared secret. */
export class InstanceKeys {
  private constructor(private readonly hmac: Hmac) {}

  static async create(secret: string): Promise<InstanceKeys> {
    return new InstanceKeys(await Hmac.create(new TextEncoder().encode(secret)));
  }

  /**
   * A session id owned by `owner`: 128 random bits, the owner's id and a MAC over both, joined
   * by dots (visible ASCII, as MCP Transports § "Session Management" requires).
   * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
   */
  async sessionId(owner: string): Promise<string> {
    const random = base64url(randomBytes(16));
    return `${random}.${owner}.${await this.#mac(`session\n${random}\n${owner}`)}`;
  }

  /** The instance a session id names, if its tag is authentic; null otherwise (untagged too). */
  async ownerOf(sessionId: string): Promise<string | null> {
    const parts = sessionId.split(".");
    if (parts.length !== 3 || !ID.test(parts[0]) || !ID.test(parts[1])) return null;
    const [random, owner, mac] = parts;
    const expected = await this.#mac(`session\n${random}\n${owner}`);
    return timingSafeEqual(expected, mac) ? owner : null;
  }

  /** The signature header of a request `from` forwards `to` (method, path and client address). */
  async signForward(request: ForwardFacts, now = Date.now()): Promise<string> {
    const ts = String(now);
    return `${request.from}.${ts}.${await this.#mac(forwardText(request, ts))}`;
  }

  /**
   * The sending instance of a forwarded request whose signature header is authentic, addressed
   * to `request.to` and recent; null otherwise.
   */
  async verifyForward(
    header: string | null,
    request: Omit<ForwardFacts, "from">,
    now = Date.now(),
  ): Promise<string | null> {
    const parts = header?.split(".") ?? [];
    if (parts.length !== 3 || !ID.test(parts[0]) || !/^\d{1,16}$/.test(parts[1])) return null;
    const [from, ts, mac] = parts;
    if (Math.abs(now - Number(ts)) > PEER_SKEW_MS) return null;
    const expected = await this.#mac(forwardText({ ...request, from }, ts));
    return timingSafeEqual(expected, mac) ? from : null;
  }

  async #mac(text: string): Promise<string> {
    return (await this.hmac.sign(text)).slice(0, MAC_CHARS);
  }
}

/** What a forwarded request's signature covers. */
export interface ForwardFacts {
  from: string;
  to: string;
  method: string;
  /** Path and query, e.g. `/mcp/files` or `/sse/files/messages?sessionId=…`. */
  path: string;
  clientIp: string;
}

function forwardText(r: ForwardFacts, ts: string): string {
  return ["forward", r.from, r.to, ts, r.method, r.path, r.clientIp].join("\n");
}
