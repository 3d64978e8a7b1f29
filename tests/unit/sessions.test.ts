/** SessionStore: total and per-identity room, fair eviction, and re-adding a stored session. */
import assert from "node:assert/strict";
import { Session, SessionStore } from "../../lib/mcp/sessions.ts";
import { UnavailableError } from "../../lib/children/lifecycle.ts";
import { SseRegistry, SseWriter } from "../../lib/mcp/sse.ts";
import { SERVER_DEFAULTS, type ServerConfig } from "../../lib/config/schema.ts";

const SERVER: ServerConfig = {
  ...SERVER_DEFAULTS,
  name: "fx",
  command: "true",
  args: [],
  env: {},
  logArguments: false,
};

let clock = 1_000;

function session(user: string): Session {
  const s = new Session(
    SERVER,
    { key: user },
    "streamable",
    "2025-11-25",
    { sampling: false, elicitation: false, roots: false },
    "test",
  );
  s.lastActive = clock++;
  return s;
}

function store(total: number, perUser = total) {
  const evicted: Session[] = [];
  const sessions = new SessionStore(total, (s) => evicted.push(s), perUser);
  return { sessions, evicted };
}

Deno.test("re-adding a stored session evicts nothing", () => {
  const { sessions, evicted } = store(2);
  const a = session("alice");
  const b = session("bob");
  sessions.add(a);
  sessions.add(b);
  sessions.add(b);
  assert.equal(sessions.size, 2);
  assert.equal(sessions.get(a.id), a);
  assert.deepEqual(evicted, []);
});

Deno.test("an identity at its share loses its own least recently active session", () => {
  const { sessions, evicted } = store(10, 2);
  const alice = session("alice");
  const [b1, b2, b3] = [session("bob"), session("bob"), session("bob")];
  sessions.add(alice);
  sessions.add(b1);
  sessions.add(b2);
  b1.lastActive = clock++; // b2 is now bob's least recently active.
  sessions.add(b3);
  assert.deepEqual(evicted, [b2]);
  assert.equal(sessions.countOf("bob"), 2);
  assert.equal(sessions.get(alice.id), alice);
});

Deno.test("one identity filling the store never evicts another's session", () => {
  const { sessions, evicted } = store(40, 100);
  const alice = session("alice");
  sessions.add(alice);
  for (let i = 0; i < 45; i++) sessions.add(session("bob"));
  assert.equal(sessions.size, 40);
  assert.equal(sessions.get(alice.id), alice);
  assert.equal(evicted.length, 6);
  assert.ok(evicted.every((s) => s.identityKey === "bob"));
});

Deno.test("at total capacity a newcomer displaces the largest holder's oldest session", () => {
  const { sessions, evicted } = store(4, 100);
  const bob = [session("bob"), session("bob"), session("bob")];
  const alice = session("alice");
  for (const s of [...bob, alice]) sessions.add(s);
  const carol = session("carol");
  assert.equal(sessions.refusal("carol"), null);
  sessions.add(carol);
  assert.deepEqual(evicted, [bob[0]]);
  // bob (2) no longer holds more than carol would (2): carol's next session replaces her own.
  sessions.add(session("carol"));
  assert.deepEqual(evicted, [bob[0], carol]);
});

Deno.test("at total capacity with no larger holder a newcomer is refused", () => {
  const { sessions, evicted } = store(2, 100);
  const a = session("alice");
  const b = session("bob");
  sessions.add(a);
  sessions.add(b);
  const refusal = sessions.refusal("carol");
  assert.ok(refusal instanceof UnavailableError);
  assert.equal(refusal.retryAfterMs, 30_000);
  assert.throws(() => sessions.add(session("carol")), UnavailableError);
  assert.equal(sessions.size, 2);
  assert.deepEqual(evicted, []);
});

Deno.test("deleting a session frees its identity's share", () => {
  const { sessions, evicted } = store(10, 1);
  const a = session("alice");
  sessions.add(a);
  assert.equal(sessions.delete(a), true);
  assert.equal(sessions.delete(a), false);
  assert.equal(sessions.countOf("alice"), 0);
  sessions.add(session("alice"));
  assert.deepEqual(evicted, []);
});

Deno.test("a session belongs only to the person and OAuth client that opened it", () => {
  const s = new Session(
    SERVER,
    { key: "alice", clientId: "app-1" },
    "streamable",
    "2025-11-25",
    { sampling: false, elicitation: false, roots: false },
    "test",
  );
  assert.equal(s.belongsTo({ key: "alice", clientId: "app-1" }), true);
  assert.equal(s.belongsTo({ key: "alice", clientId: "app-2" }), false);
  assert.equal(s.belongsTo({ key: "alice" }), false);
  assert.equal(s.belongsTo({ key: "bob", clientId: "app-1" }), false);
});

Deno.test("the idle sweep ends idle sessions without an open stream, and only those", () => {
  const { sessions, evicted } = store(10);
  const idle = session("alice");
  const listening = session("alice");
  const fresh = session("bob");
  for (const s of [idle, listening, fresh]) sessions.add(s);
  idle.lastActive = listening.lastActive = 0;
  fresh.lastActive = 9_000;
  listening.addListener(new SseWriter(new SseRegistry()));
  sessions.sweep(10_000, 5_000);
  assert.deepEqual(evicted, [idle]);
  assert.equal(sessions.get(listening.id), listening);
  assert.equal(sessions.get(fresh.id), fresh);
});
