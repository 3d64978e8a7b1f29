/** Parked calls: handed back only to the matching retry of the latest round, and expiring. */
import assert from "node:assert/strict";
import { Parking } from "../../../lib/mcp/modern/parking.ts";
import { StateSealer } from "../../../lib/mcp/modern/state.ts";
import { type CallOptions, ModernCall } from "../../../lib/mcp/modern/call.ts";
import { Exchange } from "../../../lib/mcp/modern/exchange.ts";
import { SseRegistry } from "../../../lib/mcp/sse.ts";
import { SERVER_DEFAULTS } from "../../../lib/config/schema.ts";

const registry = new SseRegistry();
const PARAMS = { name: "t", arguments: { a: 1 } };

function exchange(id: number, params: Record<string, unknown> = PARAMS) {
  return new Exchange(
    {
      kind: "request",
      id,
      method: "tools/call",
      params,
      capabilities: { elicitation: {} },
      logLevel: null,
      clientName: "c",
    },
    false,
    registry,
  );
}

function parkedCall(parking: Parking, timeoutMs = 60_000) {
  const events: string[] = [];
  let onCancel = () => {};
  /** Settles when the call cancels the child's request (its last step when it is abandoned). */
  const cancelled = new Promise<void>((resolve) => onCancel = resolve);
  const first = exchange(1);
  const options: CallOptions = {
    request: first.request,
    server: {
      name: "fx",
      command: "x",
      args: [],
      env: {},
      logArguments: false,
      ...SERVER_DEFAULTS,
    },
    identity: { key: "github:1", clientId: "a" },
    shape: { serverInfo: {}, ttlMs: 0, cacheScope: "private" },
    answerChild: (m) => events.push(`child ${JSON.stringify(m.error ?? m.result)}`),
    cancel: () => {
      events.push("cancel");
      onCancel();
    },
    park: (c) => parking.park(c, timeoutMs),
    unpark: (c) => parking.unpark(c),
  };
  const call = new ModernCall(options, first);
  call.send(JSON.stringify({
    jsonrpc: "2.0",
    id: "mop-1",
    method: "elicitation/create",
    params: { message: "?" },
  }));
  return { call, first, events, cancelled };
}

/** `promise`, or a failure naming `what` after `ms` (a loaded machine fires timers late). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const RETRY = { identity: { key: "github:1", clientId: "a" }, server: "fx", method: "tools/call" };

Deno.test("parking: the matching retry resumes the call; a replay after completion is refused", async () => {
  const parking = new Parking();
  const { call, first } = parkedCall(parking);
  const { requestState: state, inputRequests } = (await (await first.response).json()).result;
  assert.equal(parking.size, 1);
  // Every input answered, so the call waits on the child and asks nothing again meanwhile (with
  // an unanswered input it would re-park at once, and whether that beats the next step is luck).
  const inputResponses = Object.fromEntries(
    Object.keys(inputRequests).map((key) => [key, { action: "decline" }]),
  );
  const retry = exchange(2, { ...PARAMS, requestState: state, inputResponses });
  assert.equal(
    await parking.resume(state, { ...RETRY, params: retry.request.params }, retry),
    call,
  );
  // The same state again while the retry is being answered: busy.
  assert.equal(await parking.resume(state, { ...RETRY, params: PARAMS }, exchange(3)), "busy");
  call.end(JSON.stringify({ jsonrpc: "2.0", id: 1, result: { content: [] } }));
  assert.equal(parking.size, 0);
  assert.equal(await parking.resume(state, { ...RETRY, params: PARAMS }, exchange(4)), "gone");
  await retry.response;
});

Deno.test("parking: other user, other client, other call, tampered state", async () => {
  const parking = new Parking();
  const { call, first } = parkedCall(parking);
  const state = (await (await first.response).json()).result.requestState as string;
  const params = PARAMS;
  const other = { identity: { key: "github:2", clientId: "a" } };
  assert.equal(
    await parking.resume(state, { ...RETRY, ...other, params }, exchange(2)),
    "principal",
  );
  const client = { identity: { key: "github:1", clientId: "b" } };
  assert.equal(
    await parking.resume(state, { ...RETRY, ...client, params }, exchange(2)),
    "principal",
  );
  const tool = { ...PARAMS, arguments: { a: 2 } };
  assert.equal(await parking.resume(state, { ...RETRY, params: tool }, exchange(2)), "request");
  assert.equal(await parking.resume(`${state}x`, { ...RETRY, params }, exchange(2)), "invalid");
  assert.equal(call.parked, true);
  call.abandon();
});

Deno.test("parking: a retry that never comes abandons the call at its expiry, and says so", async () => {
  const lines: [string, Record<string, unknown> | undefined][] = [];
  const parking = new Parking({ log: { info: (m, f) => lines.push([m, f]) } });
  const { call, first, events, cancelled } = parkedCall(parking, 30);
  await first.response;
  await within(cancelled, 10_000, "the call abandoned at its 30 ms expiry");
  assert.equal(call.done, true);
  assert.equal(parking.size, 0);
  assert.ok(events[0].startsWith("child "), "the child's pending request got an error");
  assert.ok(events[0].includes("in time"));
  assert.equal(events[1], "cancel");
  assert.equal(lines.length, 1);
  assert.match(lines[0][0], /unanswered in time; the call is cancelled/);
  assert.deepEqual(lines[0][1], {
    server: "fx",
    method: "tools/call",
    name: "t",
    user_id: undefined,
    login: undefined,
    client_id: "a",
    inputs: 1,
    waited_s: 0,
  });
});

Deno.test("parking: a retry after the call was abandoned at its expiry hears expired, not gone", async () => {
  // Sealing is slow (a loaded machine): the state goes out 80 ms after the call was parked. Its
  // expiry still counts from the parking, so once the call is abandoned (150 ms) the state reads
  // as expired; counted from the sealing, it would still be valid for 80 ms, naming a call gone.
  const sealer = (async () => {
    await new Promise((resolve) => setTimeout(resolve, 80));
    return await StateSealer.ephemeral();
  })();
  const parking = new Parking({ sealer });
  const { call, first, cancelled } = parkedCall(parking, 150);
  const state = (await (await first.response).json()).result.requestState as string;
  await within(cancelled, 10_000, "the call abandoned at its 150 ms expiry");
  assert.equal(call.done, true);
  assert.equal(await parking.resume(state, { ...RETRY, params: PARAMS }, exchange(2)), "expired");
});

Deno.test("parking: a state of an older round is refused once the next round is out", async () => {
  const parking = new Parking();
  const { call, first } = parkedCall(parking);
  const one = (await (await first.response).json()).result.requestState as string;
  const retry = exchange(2); // no responses: the same question goes out again as round 2
  assert.equal(await parking.resume(one, { ...RETRY, params: PARAMS }, retry), call);
  const two = (await (await retry.response).json()).result.requestState as string;
  assert.notEqual(two, one);
  assert.equal(await parking.resume(one, { ...RETRY, params: PARAMS }, exchange(3)), "busy");
  const last = exchange(4);
  assert.equal(await parking.resume(two, { ...RETRY, params: PARAMS }, last), call);
  call.abandon();
  await last.response;
});
