/** Owner tags and forwarded-request signatures: only the shared secret makes them. */
import assert from "node:assert/strict";
import { InstanceKeys, newInstanceId, PEER_SKEW_MS } from "../../../lib/instances/tags.ts";

const SECRET = "s".repeat(40);

Deno.test("a session id names its owner; a forged or altered tag names nobody", async () => {
  const keys = await InstanceKeys.create(SECRET);
  const owner = newInstanceId();
  const id = await keys.sessionId(owner);
  assert.match(id, /^[\x21-\x7e]+$/, "visible ASCII (MCP session ids)");
  assert.equal(await keys.ownerOf(id), owner);
  assert.notEqual(await keys.sessionId(owner), id, "random part differs");

  const [random, , mac] = id.split(".");
  const other = newInstanceId();
  assert.equal(await keys.ownerOf(`${random}.${other}.${mac}`), null, "owner swapped");
  assert.equal(await keys.ownerOf(`${random}x.${owner}.${mac}`), null, "random altered");
  assert.equal(await keys.ownerOf("plain-random-id"), null, "untagged (one instance)");
  assert.equal(await keys.ownerOf(`${random}.${owner}`), null, "no MAC");
  const elsewhere = await InstanceKeys.create("t".repeat(40));
  assert.equal(await elsewhere.ownerOf(id), null, "another secret");
  assert.equal(await elsewhere.ownerOf(await elsewhere.sessionId(owner)), owner);
});

Deno.test("a forwarded request's signature binds sender, receiver, method, path, client and time", async () => {
  const keys = await InstanceKeys.create(SECRET);
  const facts = { from: "A", to: "B", method: "POST", path: "/mcp/files", clientIp: "192.0.2.1" };
  const now = 1_800_000_000_000;
  const header = await keys.signForward(facts, now);
  const { from: _from, ...rest } = facts;
  assert.equal(await keys.verifyForward(header, rest, now), "A");
  assert.equal(await keys.verifyForward(header, rest, now + PEER_SKEW_MS), "A");
  assert.equal(await keys.verifyForward(header, rest, now + PEER_SKEW_MS + 1), null, "too old");
  assert.equal(await keys.verifyForward(header, rest, now - PEER_SKEW_MS - 1), null, "future");
  for (
    const changed of [
      { to: "C" },
      { method: "GET" },
      { path: "/mcp/other" },
      { clientIp: "192.0.2.2" },
    ]
  ) {
    assert.equal(await keys.verifyForward(header, { ...rest, ...changed }, now), null);
  }
  const [, ts, mac] = header.split(".");
  assert.equal(await keys.verifyForward(`Z.${ts}.${mac}`, rest, now), null, "sender swapped");
  assert.equal(await keys.verifyForward(null, rest, now), null);
  assert.equal(await keys.verifyForward("garbage", rest, now), null);
  const stranger = await InstanceKeys.create("t".repeat(40));
  assert.equal(await stranger.verifyForward(header, rest, now), null, "another secret");
});
