/**
 * The router with fake children (RouterOptions.spawn): one lookup per HTTP request (`route`),
 * the methods the proxy answers itself, the routing key per mode, the child limits, per-session
 * slots and spares, and the idle timeout.
 */
import assert from "node:assert/strict";
import { type RoutedSession, Router } from "../../../lib/router/router.ts";
import { makeRoom } from "../../../lib/router/limits.ts";
import type { BackendState } from "../../../lib/children/supervisor.ts";
import { UnavailableError } from "../../../lib/children/lifecycle.ts";
import {
  DEFAULT_LIMITS,
  type Limits,
  type Mode,
  SERVER_DEFAULTS,
  type ServerConfig,
} from "../../../lib/config/schema.ts";
import { silentLogger } from "../../../lib/log.ts";
import { type FakeChildOptions, fakeSpawner } from "../../helpers/fake-child.ts";
import { testReply, testSession } from "../../helpers/downstream.ts";

function server(mode: Mode, extra: Partial<ServerConfig> = {}): ServerConfig {
  return {
    ...SERVER_DEFAULTS,
    name: "s",
    command: "fake",
    args: [],
    env: {},
    mode,
    warm: 0,
    logArguments: false,
    ...extra,
  };
}

function setup(
  config: ServerConfig,
  limits: Partial<Limits> = {},
  child: FakeChildOptions | ((n: number) => FakeChildOptions) = {},
) {
  const fake = fakeSpawner(child);
  const router = new Router({
    servers: [config],
    limits: { ...DEFAULT_LIMITS, ...limits },
    log: silentLogger,
    version: "t",
    spawn: fake.spawn,
  });
  let n = 0;
  const session = (user = "github:1"): RoutedSession => ({
    ...testSession(`s${++n}`, user),
    server: config,
    identity: { key: user },
  });
  return { router, fake, session };
}

Deno.test("route: one lookup serves every message of a request; prepare starts the child and attaches the session", async () => {
  const { router, fake, session } = setup(server("per-user"));
  const s = session();
  const route = router.route(s);
  assert.equal(route.ready, false);
  assert.equal(fake.children.length, 0, "looking up starts nothing");
  await route.prepare();
  assert.equal(route.ready, true);
  assert.ok(route.mux.sessions.has(s));
  assert.equal(router.route(s).mux, route.mux, "the same child for the session");
  const reply = testReply();
  route.request({ jsonrpc: "2.0", id: 1, method: "tools/list" }, reply);
  route.notification({ jsonrpc: "2.0", method: "notifications/roots/list_changed" });
  assert.deepEqual(fake.last.traffic.map((m) => m.method), [
    "tools/list",
    "notifications/roots/list_changed",
  ]);
  await router.close();
});

Deno.test("route.request answers ping, a second initialize and logging/setLevel itself", async () => {
  for (const logging of [true, false]) {
    const capabilities = logging ? { tools: {}, logging: {} } : { tools: {} };
    const { router, fake, session } = setup(server("per-user"), {}, { capabilities });
    const s = session();
    await router.initialize(s, "2025-06-18", ["2025-06-18"]);
    const route = router.route(s);
    const answers = ["ping", "initialize", "logging/setLevel", "logging/setLevel"].map(
      (method, i) => {
        const reply = testReply();
        const params = i === 2 ? { level: "loud" } : { level: "error" };
        route.request({ jsonrpc: "2.0", id: i, method, params }, reply);
        return reply.final();
      },
    );
    assert.deepEqual(answers[0], { jsonrpc: "2.0", id: 0, result: {} });
    assert.deepEqual(answers[1]?.error, {
      code: -32600,
      message: "the session is already initialized",
    });
    assert.deepEqual(answers[2]?.error, { code: -32602, message: "unknown log level" });
    if (logging) {
      assert.deepEqual(answers[3], { jsonrpc: "2.0", id: 3, result: {} });
      assert.equal(s.logLevel, 4, "kept for this session");
      assert.deepEqual(fake.last.traffic, [], "the child's level is everyone's: left alone");
    } else {
      assert.equal(answers[3], undefined, "no logging capability: the child answers");
      assert.deepEqual(fake.last.traffic.map((m) => m.method), ["logging/setLevel"]);
      assert.equal(s.logLevel, -1);
    }
    await router.close();
  }
});

Deno.test("routeKey: per-user by identity, per-session by session, shared for everyone", () => {
  for (
    const [mode, expected] of [
      ["per-user", ["github:1", "github:1", "github:2"]],
      ["per-session", ["session:s1", "session:s2", "session:s3"]],
      ["shared", ["*", "*", "*"]],
    ] as const
  ) {
    const { router, session } = setup(server(mode));
    const keys = [session(), session(), session("github:2")].map((s) => router.routeKey(s));
    assert.deepEqual(keys, expected, mode);
  }
});

interface Slot {
  owner: string;
  supervisor: { state: BackendState; lastActivity: number };
  inFlight: number;
  queued: number;
}

const slot = (owner: string, lastActivity: number, extra: Partial<Slot> = {}): Slot => ({
  owner,
  supervisor: { state: "ready", lastActivity },
  inFlight: 0,
  queued: 0,
  ...extra,
});

Deno.test("makeRoom: childrenPerUser stops the owner's least recently used idle child", () => {
  const [old, recent, theirs] = [slot("u", 1), slot("u", 2), slot("v", 0)];
  const room = makeRoom("u", [recent, theirs, old], { childrenPerUser: 2, childrenTotal: 10 });
  assert.deepEqual(room, { stop: [{ child: old, limit: "childrenPerUser" }] });
  assert.deepEqual(makeRoom("u", [recent, old], { childrenPerUser: 3, childrenTotal: 10 }), {
    stop: [],
  });
  assert.deepEqual(
    makeRoom("shared", [slot("shared", 1)], { childrenPerUser: 1, childrenTotal: 10 }),
    { stop: [] },
    "the shared child is nobody's",
  );
});

Deno.test("makeRoom: childrenTotal stops the least recently used idle child of anyone", () => {
  const children = [slot("a", 5), slot("b", 3), slot("c", 4)];
  const room = makeRoom("d", children, { childrenPerUser: 4, childrenTotal: 2 });
  assert.deepEqual(room.stop.map((s) => [s.child.owner, s.limit]), [
    ["b", "childrenTotal"],
    ["c", "childrenTotal"],
  ]);
});

Deno.test("makeRoom: a starting, restarting, busy or queued child is never stopped; then the limit refuses", () => {
  const busy = [
    slot("a", 1, { supervisor: { state: "starting", lastActivity: 1 } }),
    slot("b", 1, { supervisor: { state: "restarting", lastActivity: 1 } }),
    slot("c", 1, { inFlight: 1 }),
    slot("d", 1, { queued: 1 }),
  ];
  assert.deepEqual(makeRoom("e", busy, { childrenPerUser: 4, childrenTotal: 4 }), {
    stop: [],
    refused: "childrenTotal",
  });
  assert.deepEqual(makeRoom("c", busy, { childrenPerUser: 1, childrenTotal: 9 }), {
    stop: [],
    refused: "childrenPerUser",
  });
  const idleMine = slot("e", 0);
  assert.deepEqual(
    makeRoom("e", [...busy, idleMine], { childrenPerUser: 1, childrenTotal: 5 }),
    { stop: [{ child: idleMine, limit: "childrenPerUser" }] },
    "the owner's stop counts towards the total",
  );
});

Deno.test("limits: a new user's child stops the least recently used idle one; a busy one is kept and the newcomer refused", async () => {
  const { router, fake, session } = setup(server("per-user"), { childrenTotal: 1 });
  const [a, b, c] = [session("github:1"), session("github:2"), session("github:3")];
  await router.initialize(a, "2025-06-18", ["2025-06-18"]);
  await router.initialize(b, "2025-06-18", ["2025-06-18"]);
  assert.equal(fake.children[0].stopping, true, "a's idle child made room");
  router.request(b, { jsonrpc: "2.0", id: 1, method: "tools/list" }, testReply());
  await assert.rejects(
    router.initialize(c, "2025-06-18", ["2025-06-18"]),
    (e) => e instanceof UnavailableError && /limits\.childrenTotal/.test(e.message),
  );
  assert.equal(fake.children.length, 2);
  await router.close();
});

Deno.test("per-session: a failed start leaves no slot behind", async () => {
  const { router, fake, session } = setup(server("per-session"), {}, { init: "exit" });
  await assert.rejects(router.initialize(session(), "2025-06-18", ["2025-06-18"]), /start-up/);
  assert.equal(router.servers.get("s")!.muxes.size, 0);
  assert.equal(fake.children.length, 1, "and nothing restarts it for nobody");
  await router.close();
});

Deno.test("per-session spares: a new session adopts the ready spare and another spare starts", async () => {
  const { router, fake, session } = setup(server("per-session", { warm: 1 }));
  router.start();
  await Promise.resolve();
  assert.equal(fake.children.length, 1);
  const spare = router.servers.get("s")!.muxes.values().next().value!;
  await spare.supervisor.ready();
  const s = session();
  await router.initialize(s, "2025-06-18", ["2025-06-18"]);
  assert.equal(router.route(s).mux, spare, "adopted: started before the session came");
  assert.equal(spare.owner, "github:1");
  assert.equal(fake.children.length, 2, "a new spare");
  await router.detach(s);
  assert.equal(fake.children[0].stopping, true, "a per-session child ends with its session");
  await router.close();
});

Deno.test("idle timeout: an idle child is stopped by the sweep unless it is kept warm", async () => {
  for (const warm of [0, 1]) {
    const { router, fake, session } = setup(server("per-user", { idleTimeoutMs: 1000, warm }));
    await router.initialize(session(), "2025-06-18", ["2025-06-18"]);
    router.sweep(Date.now() + 500);
    assert.equal(fake.last.stopping, false);
    router.sweep(Date.now() + 2000);
    assert.equal(fake.last.stopping, warm === 0, `warm ${warm}`);
    await router.close();
  }
});

Deno.test("status: each child's state, pid, restarts, sessions and calls in flight, and a summary per server", async () => {
  const { router, fake, session } = setup(server("per-user"), {}, (n) => ({
    init: n === 1 ? "silent" : "answer",
  }));
  assert.deepEqual(router.status(), { s: { mode: "per-user", state: "idle", children: [] } });
  const a = session("github:1");
  await router.initialize(a, "2025-06-18", ["2025-06-18"]);
  router.attach(a);
  router.request(a, { jsonrpc: "2.0", id: 1, method: "tools/list" }, testReply());
  router.initialize(session("github:2"), "2025-06-18", ["2025-06-18"]).catch(() => {});
  const status = router.status().s as { state: string; children: unknown[] };
  assert.deepEqual(status.children, [
    { state: "running", pid: fake.children[0].pid, restarts: 0, sessions: 1, inFlight: 1 },
    {
      state: "starting",
      startingSeconds: 0,
      pid: fake.children[1].pid,
      restarts: 0,
      sessions: 0,
      inFlight: 0,
    },
  ]);
  assert.equal(status.state, "running");
  await router.close();
});
