/**
 * The owner's controls against a RUNNING proxy: `grants list [--user]`, `grants revoke ID`,
 * `grants revoke --all`, `clients list`, `clients revoke ID`. A revocation is in force when the
 * command returns: the very next MCP request with the token is 401, although the proxy had the
 * token's check cached. `grants revoke ID` runs as a real process with exactly the flags its
 * `--print-flags` derives (as `deno task grants`), which are `clients`' flags too (the last test
 * runs both `--print-flags` as real processes and compares them); the other cases run the same
 * code in this process (`runInProcess`), beside the proxy's process.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { ALICE, BOB, fakeGitHub, LOGIN_ENV, loginConfig } from "../helpers/oauth.ts";
import {
  expectAccepted,
  expectError,
  expectTokenRefused,
  REDIRECT_URI,
  TEST_RATES,
  type TestClient,
  TokenClient,
  type TokenPair,
} from "../helpers/oauth-tokens.ts";
import {
  cliEnv,
  derivedFlags,
  printedFlags,
  runMain,
  runNarrow,
  runNarrowInProcess,
  tableRows,
} from "../helpers/cli.ts";
import { CONFIRMED, UNCONFIRMED } from "../../lib/cli/owner.ts";
import { printable, table } from "../../lib/cli/common.ts";

/** The CLI's environment: no client secret (the owner commands never need it). */
const ENV = cliEnv();

/** Runs an owner command on the proxy's config, in this process (`process`: as a real one). */
function owner(
  proxy: ProxyProcess,
  command: "clients" | "grants",
  args: string[],
  options: { process?: boolean } = {},
) {
  const run = options.process ? runNarrow : runNarrowInProcess;
  return run(command, proxy.configPath, args, { env: ENV, cwd: proxy.dir });
}

/** `grants list` as rows keyed by column. */
async function grants(proxy: ProxyProcess, args: string[] = []) {
  const res = await owner(proxy, "grants", ["list", ...args]);
  assert.equal(res.code, 0, res.stderr);
  if (/^no grants/.test(res.stdout)) return [];
  const { headers, rows } = tableRows(res.stdout);
  assert.deepEqual(headers, [
    "GRANT ID",
    "USER",
    "CLIENT",
    "RESOURCE",
    "CREATED",
    "EXPIRES",
    "REVOKED",
  ]);
  return rows.map((r) => Object.fromEntries(headers.map((h, i) => [h, r[i]])));
}

async function clients(proxy: ProxyProcess) {
  const res = await owner(proxy, "clients", ["list"]);
  assert.equal(res.code, 0, res.stderr);
  if (res.stdout === "no clients\n") return [];
  const { headers, rows } = tableRows(res.stdout);
  assert.deepEqual(headers, ["CLIENT ID", "NAME", "AUTH", "REDIRECT HOSTS", "CREATED", "GRANTS"]);
  return rows.map((r) => Object.fromEntries(headers.map((h, i) => [h, r[i]])));
}

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

Deno.test("owner commands on a running proxy: list, revoke a grant, a client, all; then without it", async (t) => {
  const gh = await fakeGitHub();
  // Our own folder: the store outlives the stopped proxy (the last step).
  const dir = await Deno.makeTempDir({ prefix: "mop-owner-" });
  let proxy: ProxyProcess | undefined;
  try {
    proxy = await startProxy({
      mcpServers: { a: fixtureServer() },
      ...loginConfig(gh, { users: [ALICE.id, BOB.id] }),
      limits: TEST_RATES,
    }, { env: LOGIN_ENV, dir });
    const p = proxy;
    const url = p.url("a");
    const tc = new TokenClient(p.origin);
    const claude = await tc.register("none", REDIRECT_URI, "Claude test");
    const chatgpt = await tc.register("client_secret_post", REDIRECT_URI, "ChatGPT test");
    const login = async (client: TestClient, user: { id: number }) => {
      gh.setCurrentUser(user.id);
      const pair = await tc.login(client);
      // Accepted once: the proxy now has this token's check cached.
      await expectAccepted(url, pair.access_token);
      return pair;
    };
    const aliceClaude = await login(claude, ALICE);
    const aliceChatgpt = await login(chatgpt, ALICE);
    const bobClaude = await login(claude, BOB);
    let list = await grants(p);
    const grantOf = (user: string, client: TestClient) => {
      const row = list.find((g) =>
        g.USER.startsWith(`${user} (`) && g.CLIENT.startsWith(client.id)
      );
      assert.ok(row, `a grant of ${user} for ${client.id}`);
      return row;
    };

    await t.step("grants list shows the live grants", () => {
      assert.equal(list.length, 3);
      const g = grantOf("alice", claude);
      assert.equal(g.USER, `alice (${ALICE.id})`);
      assert.equal(g.CLIENT, `${claude.id} (Claude test)`);
      assert.equal(g.RESOURCE, p.origin);
      assert.match(g.CREATED, TIME);
      assert.match(g.EXPIRES, TIME);
      assert.ok(Date.parse(g.EXPIRES) - Date.parse(g.CREATED) > 89 * 86_400_000, "90 days");
      assert.equal(g.REVOKED, "-");
      assert.match(g["GRANT ID"], /^[A-Za-z0-9_-]{22}$/);
      assert.equal(grantOf("bob", claude).USER, `bob (${BOB.id})`);
      assert.equal(grantOf("alice", chatgpt).CLIENT, `${chatgpt.id} (ChatGPT test)`);
    });

    await t.step("grants list --user filters by login or id", async () => {
      const bob = await grants(p, ["--user", "bob"]);
      assert.deepEqual(bob.map((g) => g.USER), [`bob (${BOB.id})`]);
      const alice = await grants(p, [`--user=${ALICE.id}`]);
      assert.deepEqual(alice.map((g) => g.USER), [`alice (${ALICE.id})`, `alice (${ALICE.id})`]);
      assert.deepEqual((await grants(p, ["--user", "ALICE"])).length, 2, "any case");
      const none = await owner(p, "grants", ["list", "--user", "mallory"]);
      assert.equal(none.stdout, "no grants for mallory\n");
    });

    await t.step("clients list shows the clients and their grants, no secret", async () => {
      const rows = await clients(p);
      assert.deepEqual(rows.map((c) => [c["CLIENT ID"], c.NAME, c.AUTH, c["REDIRECT HOSTS"]]), [
        [claude.id, "Claude test", "none", "127.0.0.1:9"],
        [chatgpt.id, "ChatGPT test", "client_secret_post", "127.0.0.1:9"],
      ]);
      assert.deepEqual(rows.map((c) => c.GRANTS), ["2 live", "1 live"]);
      assert.match(rows[0].CREATED, TIME);
      const raw = await owner(p, "clients", ["list"]);
      assert.ok(!raw.stdout.includes(chatgpt.secret!), "the client secret is not printed");
    });

    await t.step("grants revoke ID: the next request with its token is 401", async () => {
      const id = grantOf("alice", chatgpt)["GRANT ID"];
      const res = await owner(p, "grants", ["revoke", id], { process: true });
      assert.equal(res.code, 0, res.stderr);
      assert.equal(
        res.stdout,
        `grant ${id} of alice (${ALICE.id}) for client ${chatgpt.id} (ChatGPT test): ${CONFIRMED}\n`,
      );
      await expectTokenRefused(p.origin, "a", aliceChatgpt.access_token);
      // Its refresh token is gone too; the other grants are untouched.
      expectError(await tc.refresh(chatgpt, aliceChatgpt.refresh_token), "invalid_grant");
      await expectAccepted(url, aliceClaude.access_token);
      await expectAccepted(url, bobClaude.access_token);
      list = await grants(p);
      assert.match(grantOf("alice", chatgpt).REVOKED, /^\S+Z \(revoked by the owner\)$/);
      const again = await owner(p, "grants", ["revoke", id]);
      assert.equal(again.code, 0);
      assert.match(again.stdout, /was already revoked at .*; nothing to do\n$/);
    });

    await t.step("unknown ids exit 1", async () => {
      const grant = await owner(p, "grants", ["revoke", "AAAAAAAAAAAAAAAAAAAAAA"]);
      assert.equal(grant.code, 1);
      assert.match(grant.stderr, /no grant AAAAAAAAAAAAAAAAAAAAAA \(see "deno task grants list"\)/);
      // An id may start with "-" (after "--", or on its own when it does not look like a flag).
      assert.equal((await owner(p, "grants", ["revoke", "--", "-AAAAAAAAAAAAAAAAAAAAA"])).code, 1);
      assert.equal((await owner(p, "grants", ["revoke", "-A1_AAAAAAAAAAAAAAAAAA"])).code, 1);
      const client = await owner(p, "clients", ["revoke", "mop_client_nope"]);
      assert.equal(client.code, 1);
      assert.match(client.stderr, /no client mop_client_nope/);
    });

    await t.step(
      "clients revoke ID: its tokens are 401 and /token says invalid_client",
      async () => {
        const res = await owner(p, "clients", ["revoke", claude.id]);
        assert.equal(res.code, 0, res.stderr);
        assert.equal(
          res.stdout,
          `client ${claude.id} (Claude test) deleted and 2 live grants ${CONFIRMED}\n`,
        );
        await expectTokenRefused(p.origin, "a", aliceClaude.access_token);
        await expectTokenRefused(p.origin, "a", bobClaude.access_token);
        expectError(await tc.refresh(claude, aliceClaude.refresh_token), "invalid_client", 401);
        assert.deepEqual((await clients(p)).map((c) => c["CLIENT ID"]), [chatgpt.id]);
      },
    );

    await t.step("grants revoke --all [--user]: every live grant", async () => {
      const alice1 = await login(chatgpt, ALICE);
      const bob1 = await login(chatgpt, BOB);
      const bobs = await owner(p, "grants", ["revoke", "--all", "--user", "bob"]);
      assert.equal(bobs.code, 0, bobs.stderr);
      assert.match(bobs.stdout, new RegExp(`\\n1 grant of bob ${escape(CONFIRMED)}\\n$`));
      await expectTokenRefused(p.origin, "a", bob1.access_token);
      await expectAccepted(url, alice1.access_token);
      const all = await owner(p, "grants", ["revoke", "--all"]);
      assert.equal(all.code, 0, all.stderr);
      assert.match(all.stdout, /^ {2}grant \S+ of alice \(583231\) for client /);
      assert.match(all.stdout, new RegExp(`\\n1 grant ${escape(CONFIRMED)}\\n$`));
      await expectTokenRefused(p.origin, "a", alice1.access_token);
      assert.ok((await grants(p)).every((g) => g.REVOKED !== "-"), "nothing live");
      const nothing = await owner(p, "grants", ["revoke", "--all"]);
      assert.equal(nothing.stdout, "no live grants; nothing to do\n");
      assert.deepEqual((await clients(p)).map((c) => c.GRANTS), ["0 live, 3 revoked"]);
    });

    await t.step("without a running proxy: in the store, and said so", async () => {
      const client = await tc.register("none", REDIRECT_URI, "offline test");
      const pair: TokenPair = await tc.login(client);
      await p.stop();
      const live = (await grants(p)).filter((g) => g.REVOKED === "-");
      assert.equal(live.length, 1);
      const [grant] = live;
      const res = await owner(p, "grants", ["revoke", grant["GRANT ID"]]);
      assert.equal(res.code, 0, res.stderr);
      assert.ok(res.stdout.endsWith(`: ${UNCONFIRMED}\n`), res.stdout);
      assert.ok(res.ms >= 2000 && res.ms < 10_000, `waited about 2 s (${res.ms} ms)`);
      const after = (await grants(p)).find((g) => g["GRANT ID"] === grant["GRANT ID"]);
      assert.match(after!.REVOKED, /revoked by the owner/);
      assert.ok(pair.access_token);
    });
  } finally {
    await proxy?.stop();
    await gh.close();
    await Deno.remove(dir, { recursive: true });
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("owner commands: login config required, no store yet, usage errors, flags", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-owner-" });
  try {
    const path = `${dir}/config.json`;
    const login = {
      publicUrl: "https://pi.example.com",
      dataDir: `${dir}/data`,
      github: { clientId: "Ov23liOwner", clientSecret: "${GITHUB_CLIENT_SECRET}" },
      allow: { users: ["octocat"] },
      mcpServers: { a: { command: "deno" } },
    };
    await Deno.writeTextFile(path, JSON.stringify(login));
    // The narrow flags, exactly: the store and the config, nothing else.
    const printed = {
      grants: await printedFlags("grants", path, { env: ENV, cwd: dir }),
      clients: await printedFlags("clients", path, { env: ENV, cwd: dir }),
    };
    assert.deepEqual(printed.grants, [
      "--no-prompt",
      "--unstable-kv",
      `--allow-read=${path},${dir}/data`,
      `--allow-write=${dir}/data`,
      "--allow-env=MCP_PROXY_CONFIG,GITHUB_CLIENT_SECRET",
    ]);
    assert.deepEqual(printed.clients, printed.grants);
    // The flags the other tests run the commands with are this output, derived in-process.
    for (const command of ["clients", "grants"] as const) {
      assert.deepEqual(await derivedFlags(command, path, { env: ENV, cwd: dir }), printed[command]);
    }
    const run = (command: "clients" | "grants", args: string[]) =>
      runNarrowInProcess(command, path, args, { env: ENV, cwd: dir });

    // No store yet: nothing to list, nothing to revoke, and no store is created.
    assert.equal((await run("grants", ["list"])).stdout, "no grants\n");
    assert.equal((await run("clients", ["list"])).stdout, "no clients\n");
    const revoke = await run("grants", ["revoke", "abc"]);
    assert.equal(revoke.code, 1);
    assert.match(revoke.stderr, /store\.kv does not exist yet/);
    await assert.rejects(Deno.stat(`${dir}/data`), Deno.errors.NotFound);

    // Usage mistakes exit 2.
    for (
      const [command, args, message] of [
        ["grants", [], /"grants" needs "list" or "revoke"/],
        ["grants", ["revoke"], /needs a grant id .* or --all/],
        ["grants", ["revoke", "abc", "--all"], /either an id or --all/],
        ["grants", ["list", "--bogus"], /Unknown option '--bogus'/],
        ["grants", ["list", "--user"], /option '--user' needs a value/],
        ["clients", ["list", "--all"], /Unknown option '--all'/],
        ["clients", ["remove", "x"], /unknown clients command "remove"/],
        ["clients", ["revoke"], /needs a client id/],
      ] as const
    ) {
      const res = await run(command, [...args]);
      assert.equal(res.code, 2, `${command} ${args.join(" ")}`);
      assert.match(res.stderr, message);
    }

    // A config without login has no clients or grants.
    await Deno.writeTextFile(path, JSON.stringify({ mcpServers: { a: { command: "deno" } } }));
    const local = await run("grants", ["list"]);
    assert.equal(local.code, 2);
    assert.match(local.stderr, /has no "github" section: clients and grants exist only with login/);
    // A broken config is reported as serve reports it.
    await Deno.writeTextFile(path, JSON.stringify({ mcpServers: { a: { command: 1 } } }));
    const broken = await run("clients", ["list"]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /mcpServers\.a\.command: expected a string, got a number/);
    // Without --unstable-kv and write permission the command says which flags to add.
    await Deno.writeTextFile(path, JSON.stringify(login));
    await Deno.mkdir(`${dir}/data`);
    await Deno.writeFile(`${dir}/data/store.kv`, new Uint8Array());
    const bare = await runMain(["--no-prompt", "--allow-read", "--allow-env"], [
      "grants",
      "list",
      "--config",
      path,
    ], { env: ENV });
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /--allow-write=/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listings print store text safely: no terminal escapes, no bidi overrides", () => {
  // Anyone may register a client (open DCR) and choose its name.
  assert.equal(printable("Claude\u001b]0;pwned\u0007\u001b[2J"), "Claude?]0;pwned??[2J");
  assert.equal(printable("evil\u202egnp.exe\r\nfake row"), "evil?gnp.exe??fake row");
  assert.equal(printable("x".repeat(60), 10), `${"x".repeat(9)}…`);
  assert.deepEqual(table(["ID", "NAME", "LAST"], [["a", "bb", "c d"], ["long id", "", "-"]]), [
    "ID       NAME  LAST",
    "a        bb    c d",
    "long id        -",
  ]);
});
