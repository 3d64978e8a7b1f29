/**
 * Instances in one process over an in-memory directory: the heartbeat entry, forwarding to a
 * live owner, and "gone" (no fresh heartbeat, left the directory, or unreachable) without a try.
 */
import assert from "node:assert/strict";
import {
  type InstanceDirectory,
  type InstanceRecord,
  Instances,
  STALE_MS,
} from "../../../lib/instances/instances.ts";
import { silentLogger } from "../../../lib/log.ts";

const SETTINGS = { listen: { hostname: "127.0.0.1", port: 0 }, secret: "x".repeat(32), peers: [] };
const LIMITS = { headerTimeoutMs: 5000, maxConnections: 16 };

function directory(): InstanceDirectory & { entries: Map<string, InstanceRecord> } {
  const entries = new Map<string, InstanceRecord>();
  return {
    entries,
    putInstance: (r) => Promise.resolve(void entries.set(r.id, { ...r })),
    deleteInstance: (id) => Promise.resolve(void entries.delete(id)),
    listInstances: () => Promise.resolve([...entries.values()].map((r) => ({ ...r }))),
  };
}

Deno.test("instances: a request for a live owner is forwarded, signed; a gone owner is null", async () => {
  const dir = directory();
  const a = await Instances.create(SETTINGS, dir, silentLogger);
  const b = await Instances.create(SETTINGS, dir, silentLogger);
  const seen: string[] = [];
  await a.start((req, from) => {
    seen.push(
      `${req.method} ${new URL(req.url).pathname} from=${from.instance} ip=${from.clientIp}`,
    );
    return Promise.resolve(new Response("owner says hi"));
  }, LIMITS);
  await b.start(() => Promise.resolve(new Response("b")), LIMITS);
  try {
    assert.deepEqual([...dir.entries.keys()].sort(), [a.id, b.id].sort());
    assert.equal(dir.entries.get(a.id)!.url, a.url);
    const session = await a.sessionId();
    assert.equal(await a.ownerOf(session), null, "its own session");
    assert.equal(await b.ownerOf(session), a.id);

    const req = () => new Request("http://public/mcp/fx", { method: "POST", body: "{}" });
    const target = { path: "/mcp/fx", clientIp: "192.0.2.7" };
    const res = await b.forward(a.id, req(), target);
    assert.equal(await res?.text(), "owner says hi");
    assert.deepEqual(seen, [`POST /mcp/fx from=${b.id} ip=192.0.2.7`]);
    assert.deepEqual(b.status().peers.map((p) => [p.id, p.alive]), [[a.id, true]]);

    // No heartbeat for STALE_MS: gone, and nothing is sent.
    const stale = { id: "stale", url: a.url, startedAt: 0, seenAt: Date.now() - STALE_MS };
    dir.entries.set(stale.id, stale);
    assert.equal(await b.forward(stale.id, req(), target), null);
    assert.equal(seen.length, 1);
    // An id never registered: gone.
    assert.equal(await b.forward("nobody", req(), target), null);
  } finally {
    await a.stop();
  }
  assert.equal(dir.entries.has(a.id), false, "a stopped instance leaves the directory");
  try {
    // Still fresh in the directory but not listening any more (a crash): unreachable is gone.
    dir.entries.set(a.id, { id: a.id, url: a.url, startedAt: 0, seenAt: Date.now() });
    const res = await b.forward(a.id, new Request("http://public/mcp/fx"), {
      path: "/mcp/fx",
      clientIp: "192.0.2.7",
    });
    assert.equal(res, null);
  } finally {
    await b.stop();
  }
});

Deno.test("instances: the internal listener refuses a request without a valid signature", async () => {
  const dir = directory();
  const a = await Instances.create(SETTINGS, dir, silentLogger);
  let reached = 0;
  await a.start(() => Promise.resolve(new Response(String(++reached))), LIMITS);
  try {
    for (
      const headers of [{}, { "x-mop-peer": "B.1.AAAAAAAAAAAAAAAAAAAAAA" }] as Record<
        string,
        string
      >[]
    ) {
      const res = await fetch(`${a.url}/mcp/fx`, { method: "POST", body: "{}", headers });
      assert.equal(res.status, 403);
      await res.body?.cancel();
    }
    // Signed with another secret.
    const stranger = await Instances.create(
      { ...SETTINGS, secret: "y".repeat(32) },
      dir,
      silentLogger,
    );
    const res = await stranger.forward(a.id, new Request("http://p/mcp/fx"), {
      path: "/mcp/fx",
      clientIp: "1",
    });
    assert.equal(res?.status, 403);
    await res?.body?.cancel();
    assert.equal(reached, 0);
  } finally {
    await a.stop();
  }
});
