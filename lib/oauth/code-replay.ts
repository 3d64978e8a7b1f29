/**
 * The identical-duplicate window of code redemption (ChatGPT redeems a code twice, sometimes at
 * once, and the two may land on different instances): one instance runs one code's redemptions
 * one after the other, and the first answer is kept, sealed, with the code in the store.
 * @see https://www.ietf.org/archive/id/draft-ietf-oauth-v2-1-13.html#section-4.1.3
 */
import type { CodeAnswer, CodeRecord } from "../store/store.ts";
import type { OAuthService } from "./service.ts";

/**
 * A repeated redemption may land on another instance while the first is still being answered:
 * it waits this long (from the first redemption) for the answer to appear in the store.
 */
const ANSWER_WAIT_MS = 5_000;
const ANSWER_POLL_MS = 50;

/**
 * Redemptions of one code run one after the other: a second request arriving while the first
 * is still being answered (ChatGPT's double POST can be simultaneous) must find its answer.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 */
const codeQueues = new Map<string, Promise<unknown>>();

export async function oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (codeQueues.get(key) ?? Promise.resolve()).then(fn);
  const tail = run.catch(() => {});
  codeQueues.set(key, tail);
  try {
    return await run;
  } finally {
    if (codeQueues.get(key) === tail) codeQueues.delete(key);
  }
}

/**
 * The first redemption's answer from the store; when the first redemption is still being
 * answered (on another instance: one instance's requests queue in `oneAtATime`), it waits for
 * it, at most ANSWER_WAIT_MS after that redemption.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 */
export async function earlierAnswer(
  svc: OAuthService,
  hash: string,
  record: CodeRecord,
): Promise<CodeAnswer | undefined> {
  let current: CodeRecord | null = record;
  const deadline = (record.redeemedAt ?? 0) + ANSWER_WAIT_MS;
  for (let polls = 0; current && !current.answer; polls++) {
    if (svc.now() >= deadline || polls * ANSWER_POLL_MS >= ANSWER_WAIT_MS) return undefined;
    await new Promise((resolve) => setTimeout(resolve, ANSWER_POLL_MS));
    current = await svc.store.getCode(hash);
  }
  return current?.answer;
}
