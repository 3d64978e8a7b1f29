/**
 * Calls waiting for the client's retry of a multi round-trip request, by handle. Each parked
 * call's `requestState` is sealed here; a retry's state is opened and checked against the
 * retry (principal, server, method and parameter digest, round) before its call is handed back.
 * A call whose retry does not come by the state's expiry is abandoned: the child's pending
 * requests get an error and the original request is cancelled.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/mrtr
 */
import { base64url, randomBytes } from "../../crypto.ts";
import type { Logger } from "../../log.ts";
import type { ModernCall } from "./call.ts";
import type { Exchange } from "./exchange.ts";
import { paramsDigest, type Refusal, type StateClaims, StateSealer } from "./state.ts";

/** How long a client has to retry, by default (the state's expiry). */
export const DEFAULT_INPUT_TIMEOUT_MS = 5 * 60_000;

interface Parked {
  call: ModernCall;
  timer: ReturnType<typeof setTimeout>;
}

/** Why a retry is not handed a call: the state's refusal, or its call is gone. */
export type ResumeRefusal = Refusal | "gone" | "busy";

/** The parked calls of one proxy. */
export class Parking {
  #sealer: Promise<StateSealer>;
  #handles = new WeakMap<ModernCall, string>();
  #parked = new Map<string, Parked>();

  #log: Pick<Logger, "info"> | undefined;
  /** The instance whose states this parking seals (several instances); absent: the only one. */
  instance: string | undefined;

  /** @param options.log where an expiry is reported (the proxy's log) */
  constructor(options: { sealer?: Promise<StateSealer>; log?: Pick<Logger, "info"> } = {}) {
    this.#sealer = options.sealer ?? StateSealer.ephemeral();
    this.#log = options.log;
  }

  /** Uses a key derived from `secret` (a key kept in the store) from now on. */
  useSecret(secret: Uint8Array): void {
    this.#sealer = StateSealer.fromSecret(secret);
  }

  get size(): number {
    return this.#parked.size;
  }

  /** Parks `call` until its retry or `timeoutMs`; returns the sealed state naming this round. */
  async park(call: ModernCall, timeoutMs: number): Promise<string> {
    let handle = this.#handles.get(call);
    if (!handle) {
      handle = base64url(randomBytes(16));
      this.#handles.set(call, handle);
    }
    const previous = this.#parked.get(handle);
    if (previous) clearTimeout(previous.timer);
    // The expiry is read before the timer starts, so that when the call is abandoned its state
    // is already expired (a retry then hears "expired", not that its call is gone).
    const exp = Date.now() + timeoutMs;
    const timer = setTimeout(() => this.#expire(handle, call, timeoutMs), timeoutMs);
    this.#parked.set(handle, { call, timer });
    const { request, identity, server } = call.options;
    return (await this.#sealer).seal({
      sub: identity.key,
      cid: identity.clientId ?? "",
      server: server.name,
      method: request.method,
      digest: await paramsDigest(request.params),
      handle,
      round: call.round,
      exp,
      ...(this.instance ? { inst: this.instance } : {}),
    });
  }

  /**
   * The retry did not come in time: the child's pending requests get an error and the original
   * request is cancelled at the child (basic/patterns/mrtr, "Security Considerations": state
   * expiry), and the log says so.
   */
  #expire(handle: string, call: ModernCall, timeoutMs: number): void {
    this.#parked.delete(handle);
    const { request, identity, server } = call.options;
    const name = request.params.name ?? request.params.uri;
    this.#log?.info("input request unanswered in time; the call is cancelled at the child", {
      server: server.name,
      method: request.method,
      ...(typeof name === "string" ? { name: name.slice(0, 128) } : {}),
      user_id: identity.userId,
      login: identity.login,
      client_id: identity.clientId,
      inputs: call.asking,
      waited_s: Math.round(timeoutMs / 1000),
    });
    call.abandon("the client did not answer the input request in time");
  }

  /** Forgets a call (finished or abandoned). */
  unpark(call: ModernCall): void {
    const handle = this.#handles.get(call);
    const parked = handle === undefined ? undefined : this.#parked.get(handle);
    if (!parked || parked.call !== call) return;
    clearTimeout(parked.timer);
    this.#parked.delete(handle!);
  }

  /** The claims of a retry's `requestState` once everything about it matches the retry. */
  async open(
    state: string,
    retry: {
      identity: { key: string; clientId?: string };
      server: string;
      method: string;
      params: Record<string, unknown>;
    },
  ): Promise<StateClaims | Refusal> {
    return await (await this.#sealer).open(state, {
      sub: retry.identity.key,
      cid: retry.identity.clientId ?? "",
      server: retry.server,
      method: retry.method,
      digest: await paramsDigest(retry.params),
    });
  }

  /**
   * Hands `exchange` to the parked call a retry's `requestState` names, once everything about
   * the state matches the retry; otherwise says why not.
   */
  async resume(
    state: string,
    retry: Parameters<Parking["open"]>[1],
    exchange: Exchange,
  ): Promise<ModernCall | ResumeRefusal> {
    const claims = await this.open(state, retry);
    return typeof claims === "string" ? claims : this.take(claims, exchange);
  }

  /** Hands `exchange` to the parked call opened claims name; otherwise says why not. */
  take(claims: StateClaims, exchange: Exchange): ModernCall | ResumeRefusal {
    const parked = this.#parked.get(claims.handle);
    if (!parked || parked.call.done) return "gone";
    if (!parked.call.parked || parked.call.round !== claims.round) return "busy";
    // The retry came: the call waits on the child again, not on the client.
    clearTimeout(parked.timer);
    parked.call.resume(exchange);
    return parked.call;
  }

  /** Abandons every parked call (at shutdown). */
  clear(): void {
    for (const { call, timer } of this.#parked.values()) {
      clearTimeout(timer);
      call.abandon("the proxy is shutting down");
    }
    this.#parked.clear();
  }
}
