/**
 * The store interface, one suite run against both backends: Deno KV (a temporary data directory)
 * and PostgreSQL (a throwaway cluster, tests/helpers/postgres.ts: each case in a place of its
 * own, a role and its schema, which costs milliseconds where a database costs 0.2 s; the Unix
 * socket case on a database of its own, so a fresh database is migrated too). Each
 * case gets two store objects on the same storage, as two proxy instances would have, and the
 * single-use rules are raced between them (Deno KV: concurrent calls on one handle).
 */
import assert from "node:assert/strict";
import { KvStore } from "../../../lib/store/kv.ts";
import { PgStore } from "../../../lib/store/postgres.ts";
import {
  type CodeRecord,
  type GrantRecord,
  type Store,
  StoreUnavailable,
  type TokenRecord,
} from "../../../lib/store/store.ts";
import { MIGRATIONS } from "../../../lib/store/postgres-schema.ts";
import { parsePostgresUrl, type PostgresSettings } from "../../../lib/config/store-schema.ts";
import { startPostgres, type TestPostgres } from "../../helpers/postgres.ts";

/**
 * Two store objects on one fresh storage, as two instances have them. Deno KV serves one
 * instance (a second handle on the file in one process meets "database is locked"), so its two
 * are one handle and the races run between concurrent calls on it.
 */
interface Backend {
  name: string;
  fresh(): Promise<{ stores: [Store, Store]; cleanup(): Promise<void> }>;
}

const HOUR = 3_600_000;

function grant(id: string, over: Partial<GrantRecord> = {}): GrantRecord {
  const now = Date.now();
  return {
    id,
    clientId: "client-1",
    redirectUri: "http://127.0.0.1:9/cb",
    userId: 7,
    login: "octo",
    scope: "mcp",
    resource: "https://proxy.example.com",
    createdAt: now,
    expiresAt: now + HOUR,
    ...over,
  };
}

function token(grantId: string, kind: "access" | "refresh" = "access"): TokenRecord {
  const now = Date.now();
  return {
    kind,
    grantId,
    clientId: "client-1",
    userId: 7,
    scope: "mcp",
    resource: "https://proxy.example.com",
    issuedAt: now,
    expiresAt: now + HOUR,
  };
}

function code(grantId: string): CodeRecord {
  return {
    grantId,
    clientId: "client-1",
    redirectUri: "http://127.0.0.1:9/cb",
    challenge: "c".repeat(43),
    scope: "mcp",
    resource: "https://proxy.example.com",
    userId: 7,
    expiresAt: Date.now() + 60_000,
  };
}

type Case = [name: string, run: (a: Store, b: Store) => Promise<void>];

const CASES: Case[] = [
  ["a key is created once and shared", async (a, b) => {
    const [k1, k2] = await Promise.all([a.key("request-state"), b.key("request-state")]);
    assert.deepEqual(k1, k2);
    assert.equal(k1.length, 32);
    assert.deepEqual(await a.key("request-state"), k1);
    assert.notDeepEqual(await a.key("vault"), k1);
  }],
  ["clients: put, get, list, delete drops grants and consents", async (a, b) => {
    const client = {
      clientId: "client-1",
      authMethod: "none" as const,
      redirectUris: ["http://127.0.0.1:9/cb"],
      metadata: { client_name: "x" },
      createdAt: Date.now(),
    };
    await a.putClient(client);
    assert.deepEqual(await b.getClient("client-1"), client);
    assert.deepEqual((await b.listClients()).map((c) => c.clientId), ["client-1"]);
    await a.putGrant(grant("g1"));
    await a.putToken("t1", token("g1"));
    await a.putConsent({
      userId: 7,
      login: "octo",
      clientId: "client-1",
      redirectUri: "http://127.0.0.1:9/cb",
      approvedAt: 1,
    });
    assert.equal((await b.listConsents()).length, 1);
    await b.deleteClient("client-1");
    assert.equal(await a.getClient("client-1"), null);
    assert.equal(await a.getToken("t1"), null);
    assert.ok((await a.getGrant("g1"))?.revokedAt);
    assert.deepEqual(await a.listConsents(), []);
  }],
  ["a transaction expires and its upstream state is taken once", async (a, b) => {
    const now = Date.now();
    const txn = {
      id: "txn-1",
      clientId: "client-1",
      redirectUri: "http://127.0.0.1:9/cb",
      challenge: "c".repeat(43),
      scope: "mcp",
      resource: "https://proxy.example.com",
      state: null,
      createdAt: now,
      expiresAt: now + 60_000,
    };
    await a.putTransaction(txn);
    assert.deepEqual(await b.getTransaction("txn-1", now), txn);
    assert.equal(await b.getTransaction("txn-1", now + 60_000), null);
    await a.putTransaction({ ...txn, upstream: { state: "up-1", verifier: "v" } });
    const taken = await Promise.all([
      a.takeUpstreamState("up-1", now),
      b.takeUpstreamState("up-1", now),
      a.takeUpstreamState("up-1", now),
    ]);
    assert.equal(taken.filter((t) => t !== null).length, 1);
    assert.equal(await a.getTransaction("txn-1", now), null);
  }],
  ["grants: by user, by client; revoking deletes the tokens and tells onRevoke", async (a, b) => {
    await a.putGrant(grant("g1"));
    await a.putGrant(grant("g2", { userId: 8, clientId: "client-2" }));
    await a.putToken("t1", token("g1"));
    await a.putToken("r1", token("g1", "refresh"));
    await a.putToken("t2", token("g2"));
    assert.deepEqual((await b.grantsOfUser(7)).map((g) => g.id), ["g1"]);
    assert.deepEqual((await b.grantsOfClient("client-2")).map((g) => g.id), ["g2"]);
    assert.equal((await b.listGrants()).length, 2);
    let revoked = 0;
    b.onRevoke = () => revoked++;
    assert.equal(await b.revokeGrant("g1", "test", 5), true);
    assert.equal(revoked, 1);
    assert.equal(await b.revokeGrant("g1", "again", 6), false);
    assert.equal(await a.revokeGrant("nope", "x", 6), false);
    const g1 = await a.getGrant("g1");
    assert.equal(g1?.revokedAt, 5);
    assert.equal(g1?.revokedReason, "test");
    assert.equal(await a.getToken("t1"), null);
    assert.equal(await a.getToken("r1"), null);
    assert.ok(await a.getToken("t2"));
    await a.revokeTokens(["t2"], "g2");
    assert.equal(await b.getToken("t2"), null);
  }],
  ["a refresh token gets one successor, whoever races", async (a, b) => {
    await a.putGrant(grant("g1"));
    await a.putToken("r1", token("g1", "refresh"));
    const results = await Promise.all(
      [a, b, a, b].map((s, i) =>
        s.setSuccessor("r1", { refreshHash: `next-${i}`, sealed: `sealed-${i}`, issuedAt: i })
      ),
    );
    const winners = results.filter((r) => r.ok);
    assert.equal(winners.length, 1);
    const winner = winners[0].current!.successor!;
    for (const r of results) assert.deepEqual(r.current?.successor, winner);
    assert.deepEqual((await b.getToken("r1"))?.successor, winner);
    assert.equal((await a.setSuccessor("gone", winner)).ok, false);
  }],
  ["a code is redeemed once, whoever races", async (a, b) => {
    await a.putCode("c1", code("g1"));
    const results = await Promise.all([a, b, a, b, a, b].map((s) => s.redeemCode("c1", 1234)));
    assert.equal(results.filter((r) => r.first).length, 1);
    for (const r of results) assert.equal(r.code?.redeemedAt, 1234);
    const again = await b.redeemCode("c1", 9999);
    assert.equal(again.first, false);
    assert.equal(again.code?.redeemedAt, 1234);
    assert.deepEqual(await a.redeemCode("unknown", 1), { first: false, code: null });
    // The first answer is kept for an identical request, on any instance.
    const answer = { fingerprint: "f", sealed: "s", at: 1234 };
    await a.putCodeAnswer("c1", answer);
    assert.deepEqual((await b.getCode("c1"))?.answer, answer);
    assert.equal((await b.getCode("c1"))?.redeemedAt, 1234);
    assert.equal(await b.getCode("unknown"), null);
  }],
  ["pins, GitHub tokens, documents and client metadata documents", async (a, b) => {
    await a.putPin("Octo", { id: 7, pinnedAt: 1 });
    assert.deepEqual(await b.getPin("octo"), { id: 7, pinnedAt: 1 });
    await a.putGitHubToken(7, "sealed");
    assert.equal(await b.getGitHubToken(7), "sealed");
    await b.deleteGitHubToken(7);
    assert.equal(await a.getGitHubToken(7), null);
    await a.putDocument("https://ranges.example/x.json", "[1]", 1_700_000_000_000);
    assert.deepEqual(await b.getDocument("https://ranges.example/x.json"), {
      text: "[1]",
      fetchedAt: 1_700_000_000_000,
    });
    assert.equal(await b.getDocument("https://ranges.example/none"), null);
    const cimd = "https://claude.ai/oauth/client.json";
    const expiresAt = Date.now() + 60_000;
    await a.putCimd(cimd, { client_id: cimd }, expiresAt);
    assert.deepEqual(await b.getCimd(cimd), { doc: { client_id: cimd }, expiresAt });
    assert.equal(await b.getCimd("https://claude.ai/none"), null);
  }],
  ["the control epoch: bumped elsewhere, watched, acknowledged", async (a, b) => {
    const seen: number[] = [];
    let wake = () => {};
    const stop = a.watchEpoch((epoch) => {
      seen.push(epoch);
      wake();
    }, (error) => assert.fail(String(error)));
    try {
      const next = (count: number) =>
        new Promise<void>((resolve) => {
          wake = () => seen.length >= count && resolve();
          wake();
        });
      await next(1);
      assert.deepEqual(seen, [0]);
      assert.equal(await b.bumpEpoch(), 1);
      await next(2);
      assert.deepEqual(seen, [0, 1]);
      assert.equal(await b.epoch(), 1);
      await a.acknowledge(1, 42);
      assert.deepEqual(await b.acknowledged(), { epoch: 1, at: 42 });
    } finally {
      stop();
    }
  }],
];

const kv: Backend = {
  name: "kv",
  async fresh() {
    const dir = await Deno.makeTempDir({ prefix: "mop-store-" });
    const store = await KvStore.open(dir);
    return {
      stores: [store, store],
      cleanup: async () => {
        await store.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
};

function postgresBackend(pg: TestPostgres): Backend {
  let n = 0;
  return {
    name: "postgres",
    async fresh() {
      const settings = parsePostgresUrl(await pg.place(`case_${++n}`)) as PostgresSettings;
      const stores: [Store, Store] = [await PgStore.open(settings), await PgStore.open(settings)];
      return {
        stores,
        cleanup: async () => {
          for (const store of stores) await store.close();
        },
      };
    },
  };
}

async function runCases(t: Deno.TestContext, backend: Backend): Promise<void> {
  for (const [name, run] of CASES) {
    await t.step(name, async () => {
      const storage = await backend.fresh();
      try {
        await run(...storage.stores);
      } finally {
        await storage.cleanup();
      }
    });
  }
}

Deno.test("store: Deno KV backend", async (t) => {
  await runCases(t, kv);
});

/** What only the PostgreSQL backend promises: several instances on one database. */
const POSTGRES_CASES: [name: string, run: (pg: TestPostgres, db: string) => Promise<void>][] = [
  ["instances opening an empty database together migrate it once", async (pg, db) => {
    const settings = parsePostgresUrl(await pg.place(db)) as PostgresSettings;
    const stores = await Promise.all([1, 2, 3].map(() => PgStore.open(settings)));
    try {
      const rows = await pg.query(db, "SELECT version, applied_by FROM mop_migrations");
      assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((_, i) => i + 1));
      assert.ok(stores.some((s) => s.instance === rows[0].applied_by));
      // Opening again later changes nothing.
      const again = await PgStore.open(settings);
      await again.close();
      assert.equal((await pg.query(db, "SELECT * FROM mop_migrations")).length, rows.length);
    } finally {
      for (const store of stores) await store.close();
    }
  }],
  ["a revocation on one instance reaches the other's onRevoke (LISTEN/NOTIFY)", async (pg, db) => {
    const settings = parsePostgresUrl(await pg.place(db)) as PostgresSettings;
    // No safety-net poll during the test: only the notification can deliver it.
    const a = await PgStore.open(settings, { pollMs: 3_600_000 });
    const b = await PgStore.open(settings);
    let revoked = 0;
    let wake = () => {};
    const until = (count: number) =>
      new Promise<void>((resolve) => {
        wake = () => revoked >= count && resolve();
        wake();
      });
    a.onRevoke = () => {
      revoked++;
      wake();
    };
    let stopWatching = () => {};
    const listening = new Promise<void>((resolve) => {
      stopWatching = a.watchEpoch(() => resolve(), (error) => assert.fail(String(error)));
    });
    try {
      await listening;
      await b.putGrant(grant("g1"));
      await b.putToken("t1", token("g1"));
      await b.revokeGrant("g1", "elsewhere", 1);
      await until(1);
      await b.putGrant(grant("g2"));
      await b.revokeTokens(["t2"], "g2");
      await until(2);
    } finally {
      stopWatching();
      await a.close();
      await b.close();
    }
  }],
  ["the acknowledgement is the oldest among the instances connected now", async (pg, db) => {
    const settings = parsePostgresUrl(await pg.place(db)) as PostgresSettings;
    const [a, b] = [await PgStore.open(settings), await PgStore.open(settings)];
    try {
      await a.acknowledge(2, 20);
      await b.acknowledge(1, 10);
      assert.deepEqual(await a.acknowledged(), { epoch: 1, at: 20 });
      // A crashed instance's row (no connection of its own) is not waited for.
      await pg.query(db, "INSERT INTO mop_acks VALUES ('gone', 0, 5)");
      assert.deepEqual(await a.acknowledged(), { epoch: 1, at: 20 });
      await b.close();
      assert.deepEqual(await a.acknowledged(), { epoch: 2, at: 20 });
    } finally {
      await a.close();
    }
  }],
  ["a database migrated by a newer proxy is refused", async (pg, db) => {
    const settings = parsePostgresUrl(await pg.place(db)) as PostgresSettings;
    await (await PgStore.open(settings)).close();
    await pg.query(db, "INSERT INTO mop_migrations (version, applied_by) VALUES (999, 'future')");
    await assert.rejects(PgStore.open(settings), (error: Error) => {
      assert.ok(error instanceof StoreUnavailable);
      assert.match(error.message, /schema is version 999, newer than this proxy's/);
      return true;
    });
  }],
  [
    "a wrong password or a closed port is StoreUnavailable, the password never shown",
    async (pg) => {
      const wrong = `postgres://${pg.user}:not-the-${pg.password}@${pg.host}:${pg.port}/postgres`;
      await assert.rejects(
        PgStore.open(parsePostgresUrl(wrong) as PostgresSettings),
        (e: Error) => {
          assert.ok(e instanceof StoreUnavailable);
          assert.match(e.message, /password authentication failed/);
          assert.ok(!e.message.includes(pg.password), e.message);
          return true;
        },
      );
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      listener.close();
      const closed = `postgres://${pg.user}:${pg.password}@127.0.0.1:${port}/postgres`;
      await assert.rejects(
        PgStore.open(parsePostgresUrl(closed) as PostgresSettings),
        (e: Error) => {
          assert.ok(e instanceof StoreUnavailable);
          assert.match(e.message, /does not answer/);
          assert.match(
            e.message,
            new RegExp(`postgres://${pg.user}:\\*\\*\\*@127\\.0\\.0\\.1:${port}/`),
          );
          assert.ok(!e.message.includes(pg.password), e.message);
          return true;
        },
      );
    },
  ],
  [
    "the places of these cases keep their tables apart (tests/helpers/postgres.ts)",
    async (pg, db) => {
      const migrated = async (place: string) =>
        (await pg.query(place, "SELECT to_regclass('mop_migrations') IS NOT NULL AS t"))[0].t;
      const one = parsePostgresUrl(await pg.place(`${db}_a`)) as PostgresSettings;
      await pg.place(`${db}_b`);
      await (await PgStore.open(one)).close();
      assert.equal(await migrated(`${db}_a`), true);
      assert.equal(await migrated(`${db}_b`), false);
      const [row] = await pg.query(
        `${db}_a`,
        "SELECT relnamespace::regnamespace::text AS schema FROM pg_class WHERE oid = 'mop_keys'::regclass",
      );
      assert.equal(row.schema, `${db}_a`);
    },
  ],
  ["the Unix socket works as well as TCP", async (pg, db) => {
    await pg.database(db);
    const url = `postgres://${pg.user}:${pg.password}@/${db}?host=${pg.socketDir}&port=${pg.port}`;
    const store = await PgStore.open(parsePostgresUrl(url) as PostgresSettings);
    try {
      await store.putPin("octo", { id: 7, pinnedAt: 1 });
      assert.deepEqual(await store.getPin("octo"), { id: 7, pinnedAt: 1 });
    } finally {
      await store.close();
    }
  }],
];

Deno.test("store: PostgreSQL backend", async (t) => {
  const pg = await startPostgres();
  try {
    await runCases(t, postgresBackend(pg));
    let n = 0;
    for (const [name, run] of POSTGRES_CASES) await t.step(name, () => run(pg, `only_${++n}`));
  } finally {
    await pg.stop();
  }
});
