/**
 * Two proxy instances on one PostgreSQL database (a throwaway cluster), behind a round-robin
 * front as a tunnel with two connectors would be: they start together on the empty database and
 * migrate it once; a sign-in through the front works on both; a code redeemed on both at once
 * gets one answer; a refresh on A then on B rotates; an owner revocation run against B's config
 * is refused on A's next request although A had the token's check cached. `check` reports the
 * database, and the password appears nowhere.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { ALICE, fakeGitHub, LOGIN_ENV, loginConfig } from "../helpers/oauth.ts";
import {
  expectAccepted,
  expectRefused,
  expectTokens,
  probe,
  REDIRECT_URI,
  TEST_RATES,
  TokenClient,
} from "../helpers/oauth-tokens.ts";
import { cliEnv, runNarrow, runNarrowInProcess, tableRows } from "../helpers/cli.ts";
import { startPostgres } from "../helpers/postgres.ts";
import { roundRobin } from "../helpers/round-robin.ts";
import { CONFIRMED } from "../../lib/cli/owner.ts";
import { MIGRATIONS } from "../../lib/store/postgres-schema.ts";

const STORE = { store: { url: "${DATABASE_URL}" } };

function env(url: string) {
  return { ...LOGIN_ENV, DATABASE_URL: url };
}

function config(gh: Awaited<ReturnType<typeof fakeGitHub>>, publicUrl: string) {
  return {
    publicUrl,
    mcpServers: { fx: fixtureServer() },
    ...loginConfig(gh, { users: [ALICE.id] }),
    limits: TEST_RATES,
    ...STORE,
  };
}

Deno.test("postgres store: two instances share sign-ins, codes, refreshes and revocations", async (t) => {
  const pg = await startPostgres({ logStatements: true });
  const gh = await fakeGitHub();
  const front = roundRobin([]);
  const proxies: ProxyProcess[] = [];
  try {
    const url = await pg.database("shared");
    const cfg = config(gh, front.origin);
    // Both start at once on the empty database.
    const [a, b] = await Promise.all([
      startProxy(cfg, { env: env(url) }),
      startProxy(cfg, { env: env(url) }),
    ]);
    proxies.push(a, b);
    // With an http publicUrl the printed URLs are the front's: the instances listen on `listen`.
    const [originA, originB] = await Promise.all([a, b].map(listenOrigin));
    front.use([originA, originB]);

    await t.step("the schema was migrated once", async () => {
      const rows = await pg.query("shared", "SELECT version FROM mop_migrations");
      assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((_, i) => i + 1));
    });

    await t.step("/healthz details show the store without its password", async () => {
      const body = await (await fetch(`${a.admin}/healthz`)).json();
      assert.deepEqual(body.store, {
        backend: "postgres",
        location: `postgres://${pg.user}:***@${pg.host}:${pg.port}/shared`,
      });
    });

    const tc = new TokenClient(front.origin);
    const onA = new TokenClient(originA);
    const onB = new TokenClient(originB);
    const mcpA = `${originA}/mcp/fx`;
    const mcpB = `${originB}/mcp/fx`;
    const client = await tc.register("none", REDIRECT_URI, "two instances");
    let pair = await tc.login(client);

    await t.step("a token from the front works on both instances", async () => {
      await expectAccepted(mcpA, pair.access_token);
      await expectAccepted(mcpB, pair.access_token);
    });

    await t.step("one code redeemed on A and B at once: one answer, given to both", async () => {
      const grant = await tc.code(client);
      const answers = await Promise.all([onA.exchange(client, grant), onB.exchange(client, grant)]);
      const [first, second] = answers.map(expectTokens);
      assert.equal(first.access_token, second.access_token);
      await expectAccepted(mcpB, first.access_token);
    });

    await t.step("refresh on A, then on B: the token rotates across instances", async () => {
      const viaA = expectTokens(await onA.refresh(client, pair.refresh_token));
      const viaB = expectTokens(await onB.refresh(client, viaA.refresh_token));
      assert.notEqual(viaB.refresh_token, viaA.refresh_token);
      pair = viaB;
      // Both instances check (and cache) the newest access token.
      await expectAccepted(mcpA, pair.access_token);
      await expectAccepted(mcpB, pair.access_token);
    });

    await t.step("the token check is served from the cache: no query per request", async () => {
      const lookups = async () => (await pg.log()).split("mop_tokens").length;
      const before = await lookups();
      for (let i = 0; i < 10; i++) await expectAccepted(mcpA, pair.access_token);
      assert.equal(await lookups(), before, "a token lookup ran in the database");
    });

    await t.step("an owner revocation through B's config is refused on A next", async () => {
      // The first revocation as a real process with the derived flags (the database's host and
      // port); the rest runs the same code in this process.
      const owner = (args: string[], process = false) =>
        (process ? runNarrow : runNarrowInProcess)("grants", b.configPath, args, {
          env: cliEnv({ DATABASE_URL: url }),
        });
      const list = await owner(["list"]);
      assert.equal(list.code, 0, list.stderr);
      const { rows } = tableRows(list.stdout);
      const ids = rows.map((r) => r[0]);
      assert.equal(ids.length, 2, list.stdout);
      for (const id of ids) {
        const res = await owner(["revoke", id], id === ids[0]);
        assert.equal(res.code, 0, res.stderr);
        assert.match(res.stdout, new RegExp(`: ${CONFIRMED}\\n$`));
      }
      // The challenge names the public URL's metadata: the front's.
      for (const url of [mcpA, mcpB]) {
        const answer = await probe(url, `Bearer ${pair.access_token}`);
        expectRefused(answer, front.origin, "fx", "invalid_token");
      }
    });

    await t.step("the password is in no log line", () => {
      for (const p of proxies) assert.ok(!p.logs().includes(pg.password), "password in a log");
    });
  } finally {
    for (const p of proxies) await p.stop();
    await front.close();
    await gh.close();
    await pg.stop();
  }
});

Deno.test("postgres store: check reports the database, or why it cannot be used", async () => {
  const pg = await startPostgres();
  const gh = await fakeGitHub();
  const dir = await Deno.makeTempDir({ prefix: "mop-pg-check-" });
  try {
    const path = `${dir}/config.json`;
    await Deno.writeTextFile(path, JSON.stringify(config(gh, "https://mcp.example.com")));
    // The database that answers as a real process with the derived flags; the others run the
    // same code in this process.
    const check = (url: string, process = false) =>
      (process ? runNarrow : runNarrowInProcess)("check", path, [], {
        cwd: dir,
        env: cliEnv({ DATABASE_URL: url, GITHUB_CLIENT_SECRET: LOGIN_ENV.GITHUB_CLIENT_SECRET }),
      });
    const url = await pg.database("checked");
    const ok = await check(url, true);
    assert.equal(ok.code, 0, ok.stderr);
    const redacted = `postgres://${pg.user}:***@${pg.host}:${pg.port}/checked`;
    assert.ok(
      ok.stdout.includes(`store: PostgreSQL ${redacted} (answers; empty: the proxy creates`),
      ok.stdout,
    );
    assert.match(ok.stdout, new RegExp(`--allow-net=[^ ]*${pg.host}:${pg.port}`));
    const down = await check(url.replace(`:${pg.port}/`, `:${closedPort()}/`));
    assert.equal(down.code, 2);
    assert.match(
      down.stderr,
      /store\.url postgres:\/\/mop:\*\*\*@127\.0\.0\.1:\d+\/checked: .*does not answer/,
    );
    const bad = await check("postgres://nobody@/checked");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /store\.url: .*name the host, or a socket directory/);
    for (const res of [ok, down, bad]) {
      assert.ok(!(res.stdout + res.stderr).includes(pg.password), "password printed");
    }
  } finally {
    await gh.close();
    await pg.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

async function listenOrigin(proxy: ProxyProcess): Promise<string> {
  return `http://${JSON.parse(await Deno.readTextFile(proxy.configPath)).listen}`;
}

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
