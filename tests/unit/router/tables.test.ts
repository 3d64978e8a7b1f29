/**
 * The multiplexer's two tables on their own: the pending-request table (id and progress-token
 * rewriting, lookups, the sole session for unlinked notifications, deadlines) and the
 * server-to-client request routing (recipient choice, answers, cancellations).
 */
import assert from "node:assert/strict";
import { PendingTable } from "../../../lib/router/pending.ts";
import { pickRecipient, ServerRequests } from "../../../lib/router/server-requests.ts";
import { type Json, testReply, testSession } from "../../helpers/downstream.ts";

const at = (now: number) => ({ now, timeoutMs: 1000 });

Deno.test("PendingTable.open rewrites the id and the progress token to one number unique on the child", () => {
  const table = new PendingTable();
  const a = testSession("a");
  const first: Json = { jsonrpc: "2.0", id: "x", method: "tools/call", params: { name: "t" } };
  const second: Json = {
    jsonrpc: "2.0",
    id: "x",
    method: "tools/call",
    params: { name: "t", arguments: { k: 1 }, _meta: { progressToken: "p" } },
  };
  const p1 = table.open(a, first, testReply(), at(10));
  const p2 = table.open(a, second, testReply(), { ...at(20), keepArguments: true });
  assert.deepEqual([first.id, second.id], [1, 2]);
  assert.deepEqual((second.params as Json)._meta, { progressToken: 2 });
  assert.deepEqual(
    [p1.originalId, p1.hasToken, p2.originalToken, p2.hasToken, p2.tool, p2.arguments],
    ["x", false, "p", true, "t", { k: 1 }],
  );
  assert.equal(p1.arguments, undefined, "arguments only when kept");
  assert.equal(p2.deadline, 1020);
  assert.equal(table.get(2), p2);
  assert.equal(table.get("2"), undefined, "the child's ids are numbers");
  assert.equal(table.find(a, "x"), p1);
  assert.equal(table.find(testSession("b"), "x"), undefined);
  assert.deepEqual(table.overdue(1010), [p1]);
  assert.equal(table.delete(p1), true);
  assert.equal(table.delete(p1), false);
  assert.equal(table.size, 1);
});

Deno.test("PendingTable.progress restores the client's token, only for a streaming request that asked", () => {
  const table = new PendingTable();
  const a = testSession("a");
  const asked = table.open(
    a,
    {
      id: 1,
      method: "m",
      params: { _meta: { progressToken: 0 } },
    },
    testReply(),
    at(0),
  );
  table.open(a, { id: 2, method: "m" }, testReply(), at(0));
  table.open(
    a,
    { id: 3, method: "m", params: { _meta: { progressToken: 9 } } },
    testReply(false),
    at(0),
  );
  const params: Json = { progressToken: asked.childId, progress: 1 };
  assert.equal(table.progress(params), asked);
  assert.deepEqual(params, { progressToken: 0, progress: 1 }, "a falsy token is restored too");
  assert.equal(table.progress({ progressToken: 2 }), undefined, "no token asked");
  assert.equal(table.progress({ progressToken: 3 }), undefined, "not streaming");
  assert.equal(table.progress(undefined), undefined);
});

Deno.test("PendingTable.soleSession: the newest request of the one session in flight, else ambiguous or none", () => {
  const table = new PendingTable();
  const [a, b] = [testSession("a"), testSession("b")];
  assert.equal(table.soleSession(), undefined);
  table.open(a, { id: 1, method: "m" }, testReply(), at(5));
  const newer = table.open(a, { id: 2, method: "m" }, testReply(), at(6));
  assert.equal(table.soleSession(), newer);
  table.open(b, { id: 1, method: "m" }, testReply(), at(7));
  assert.equal(table.soleSession(), "ambiguous");
});

Deno.test("a request waiting on its client is no target for the child's unrelated messages", () => {
  const table = new PendingTable();
  const [a, b] = [testSession("a"), testSession("b")];
  table.open(a, { id: 1, method: "m" }, { ...testReply(), waiting: true }, at(5));
  assert.equal(table.soleSession(), undefined);
  const live = table.open(b, { id: 1, method: "m" }, testReply(), at(6));
  assert.equal(table.soleSession(), live);
});

Deno.test("pickRecipient: a request waiting on its client only when no other caller could", () => {
  const table = new PendingTable();
  const parked = testSession("p", "github:1", { sampling: true });
  const other = testSession("o", "github:2", { sampling: true });
  const p1 = table.open(parked, { id: 1, method: "m" }, { ...testReply(), waiting: true }, at(5));
  assert.equal(pickRecipient(table.values(), "sampling"), p1);
  const p2 = table.open(other, { id: 1, method: "m" }, testReply(), at(1));
  assert.equal(pickRecipient(table.values(), "sampling"), p2, "not ambiguous across people");
});

Deno.test("pickRecipient: the newest streaming caller with the capability, never across people", () => {
  const table = new PendingTable();
  const mine = testSession("a", "github:1", { sampling: true });
  const mine2 = testSession("a2", "github:1", { sampling: true });
  const noCap = testSession("n", "github:2", { elicitation: true });
  const theirs = testSession("b", "github:2", { sampling: true });
  const p1 = table.open(mine, { id: 1, method: "m" }, testReply(), at(1));
  table.open(mine2, { id: 1, method: "m" }, testReply(false), at(2));
  table.open(noCap, { id: 1, method: "m" }, testReply(), at(3));
  assert.equal(
    pickRecipient(table.values(), "sampling"),
    p1,
    "JSON replies and no capability skipped",
  );
  const p4 = table.open(mine2, { id: 2, method: "m" }, testReply(), at(4));
  assert.equal(pickRecipient(table.values(), "sampling"), p4);
  assert.equal(pickRecipient(table.values(), "roots"), undefined);
  table.open(theirs, { id: 1, method: "m" }, testReply(), at(5));
  assert.equal(pickRecipient(table.values(), "sampling"), undefined, "two people: nobody");
});

Deno.test("ServerRequests: routed down under the proxy's id, answered once by that session to that child", () => {
  const table = new PendingTable();
  const requests = new ServerRequests();
  const [a, b] = [testSession("a"), testSession("b", "github:1", {})];
  const pa = table.open(a, { id: 1, method: "m" }, testReply(), at(1));
  table.open(b, { id: 1, method: "m" }, testReply(), at(2));
  assert.deepEqual(requests.route({ id: 7, method: "ping" }, table.values(), 100), {
    answer: '{"jsonrpc":"2.0","id":7,"result":{}}',
  });
  const refused = requests.route({ id: 8, method: "tools/list" }, table.values(), 100);
  assert.match("answer" in refused ? refused.answer : "", /"code":-32601.*method not relayed/);
  const message: Json = { jsonrpc: "2.0", id: 9, method: "sampling/createMessage" };
  const routed = requests.route(message, table.values(), 100);
  assert.ok("to" in routed && routed.to === pa);
  const downstreamId = message.id;
  assert.equal(requests.answer(b, { id: downstreamId, result: {} }, 100), undefined);
  assert.equal(requests.answer(a, { id: downstreamId, result: {} }, 100), '{"id":9,"result":{}}');
  assert.equal(requests.answer(a, { id: downstreamId, result: {} }, 100), undefined, "once");
  assert.equal(requests.size, 0);

  const again: Json = { id: 10, method: "sampling/createMessage" };
  requests.route(again, table.values(), 100);
  assert.equal(requests.answer(a, { id: again.id, result: {} }, 101), undefined, "a new child");
});

Deno.test("ServerRequests: the child's cancellation names the proxy's id; a closed session's requests are refused", () => {
  const table = new PendingTable();
  const requests = new ServerRequests();
  const a = testSession("a");
  table.open(a, { id: 1, method: "m" }, testReply(), at(1));
  const m1: Json = { id: 11, method: "sampling/createMessage" };
  const m2: Json = { id: 12, method: "elicitation/create" };
  requests.route(m1, table.values(), 1);
  requests.route(m2, table.values(), 1);
  const cancelled = requests.cancelled({
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: 11, reason: "r" },
  });
  assert.equal(cancelled?.session, a);
  assert.deepEqual(JSON.parse(cancelled!.text).params, { requestId: m1.id, reason: "r" });
  assert.equal(requests.cancelled({ params: { requestId: 11 } }), undefined, "only once");
  assert.deepEqual(requests.dropSession(a).map((line) => JSON.parse(line)), [{
    jsonrpc: "2.0",
    id: 12,
    error: { code: -32000, message: "the client session closed" },
  }]);
  assert.equal(requests.size, 0);
});
