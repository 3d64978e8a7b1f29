/** Web Crypto helpers: random tokens, SHA-256, HMAC and AES-GCM sealing. Nothing hand-rolled. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function base64url(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** An opaque token: a type prefix and 256 random bits. */
export function randomToken(prefix: string): string {
  return prefix + base64url(randomBytes(32));
}

/** SHA-256 of a string, base64url: how tokens, codes and secrets are stored. */
export async function sha256(text: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text))));
}

/** Constant-time comparison of two strings. */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** HMAC-SHA-256 signer/verifier over a persisted key. */
export class Hmac {
  private constructor(private readonly key: CryptoKey) {}

  static async create(raw: Uint8Array): Promise<Hmac> {
    const key = await crypto.subtle.importKey(
      "raw",
      raw as Uint8Array<ArrayBuffer>,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    return new Hmac(key);
  }

  async sign(message: string): Promise<string> {
    return base64url(
      new Uint8Array(await crypto.subtle.sign("HMAC", this.key, encoder.encode(message))),
    );
  }

  async verify(message: string, signature: string): Promise<boolean> {
    return timingSafeEqual(await this.sign(message), signature);
  }
}

/** AES-GCM with a key derived (HKDF-SHA-256) from secret material and a purpose label. */
export async function deriveKey(secret: Uint8Array | string, purpose: string): Promise<CryptoKey> {
  const material = typeof secret === "string" ? encoder.encode(secret) : secret;
  const base = await crypto.subtle.importKey(
    "raw",
    material as Uint8Array<ArrayBuffer>,
    "HKDF",
    false,
    [
      "deriveKey",
    ],
  );
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: encoder.encode(purpose) },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** Encrypts text; the result carries its own random IV. */
export async function seal(key: CryptoKey, plaintext: string): Promise<string> {
  const iv = randomBytes(12);
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: iv as Uint8Array<ArrayBuffer> },
      key,
      encoder.encode(plaintext),
    ),
  );
  return `${base64url(iv)}.${base64url(ct)}`;
}

/** Decrypts what `seal` produced; null if it was tampered with or the key is wrong. */
export async function open(key: CryptoKey, sealed: string): Promise<string | null> {
  const [iv, ct] = sealed.split(".");
  if (!iv || !ct) return null;
  try {
    const pt = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: fromBase64url(iv) as Uint8Array<ArrayBuffer> },
      key,
      fromBase64url(ct) as Uint8Array<ArrayBuffer>,
    );
    return decoder.decode(pt);
  } catch {
    return null;
  }
}
