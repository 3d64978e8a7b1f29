/** HTTP helpers shared by every surface: bounded, time-limited body reading and media types. */

/** The body was larger than allowed. */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`body over ${limit} bytes`);
    this.name = "BodyTooLarge";
  }
}

/** The body did not arrive in time. */
export class BodyTimeout extends Error {
  constructor(readonly ms: number) {
    super(`body not received within ${ms} ms`);
    this.name = "BodyTimeout";
  }
}

/** The default time a client has to send a request body. */
export const BODY_TIMEOUT_MS = 30_000;

/**
 * Reads a stream to the end, giving up once it passes `max` bytes (whatever Content-Length
 * claimed) or when `signal` aborts; the stream is cancelled either way.
 */
export async function readCapped(
  body: ReadableStream<Uint8Array>,
  max: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const reader = body.getReader();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => {});
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    if (signal?.aborted) throw signal.reason;
    for (;;) {
      const { done, value } =
        await (signal ? Promise.race([reader.read(), aborted]) : reader.read());
      if (done) break;
      total += value.byteLength;
      if (total > max) throw new BodyTooLarge(max);
      chunks.push(value);
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Reads a request body as text: at most `max` bytes, within `timeoutMs`.
 * Throws BodyTooLarge or BodyTimeout.
 */
export async function readBody(
  req: Request,
  max: number,
  timeoutMs = BODY_TIMEOUT_MS,
): Promise<string> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    await req.body?.cancel().catch(() => {});
    throw new BodyTooLarge(max);
  }
  if (!req.body) return "";
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new BodyTimeout(timeoutMs)), timeoutMs);
  try {
    return new TextDecoder().decode(await readCapped(req.body, max, deadline.signal));
  } finally {
    clearTimeout(timer);
  }
}

/** The media type of a Content-Type header, lower-cased, without parameters. */
export function mediaType(header: string | null): string {
  return (header ?? "").split(";")[0].trim().toLowerCase();
}
