/** The `store` config section: the PostgreSQL URL, its mistakes, and the flags it derives. */
import assert from "node:assert/strict";
import { ConfigError } from "../../../lib/config/check.ts";
import { parseConfigText } from "../../../lib/config/load.ts";
import { derivePermissions } from "../../../lib/permissions/derive.ts";
import { POSTGRES_ENV } from "../../../lib/config/store-schema.ts";

const SOURCE = "/srv/mop/config.json";
const SECRET = "pa55-w0rd-never-shown";

function load(store: unknown, env: Record<string, string> = {}) {
  return parseConfigText(
    JSON.stringify({ mcpServers: { files: { command: "npx" } }, store }),
    { source: SOURCE, env: (name) => env[name] },
  );
}

function problems(store: unknown): string[] {
  try {
    load(store);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("store.url: a PostgreSQL URL from the environment selects the database", () => {
  const { config, envRefs } = load({ url: "${DATABASE_URL}" }, {
    DATABASE_URL: `postgresql://mop:${SECRET}@db.internal:6543/proxy?sslmode=require`,
  });
  assert.deepEqual(envRefs, ["DATABASE_URL"]);
  const store = config.store!;
  assert.equal(store.host, "db.internal");
  assert.equal(store.port, 6543);
  assert.equal(store.user, "mop");
  assert.equal(store.password, SECRET);
  assert.equal(store.database, "proxy");
  assert.equal(store.sslMode, "require");
  assert.equal(store.redacted, "postgresql://mop:***@db.internal:6543/proxy?sslmode=require");
  assert.equal(load(undefined).config.store, null);
  const socket = load({ url: "postgres://mop@/proxy?host=/run/postgresql" }).config.store!;
  assert.equal(socket.socketDir, "/run/postgresql");
  assert.equal(socket.port, 5432);
});

Deno.test("store.url: mistakes are named, and never with the password", () => {
  const cases: [unknown, RegExp][] = [
    [{ url: "not a url" }, /^store\.url: not a URL: expected "postgres:\/\/USER/],
    [{ url: `mysql://u:${SECRET}@h/db` }, /^store\.url: mysql:\/\/u:\*\*\*@h\/db: the scheme must/],
    [{ url: `postgres://h:5432/db` }, /name the database user/],
    [{ url: `postgres://u:${SECRET}@h:5432/` }, /name one database after the host/],
    [{ url: `postgres://u:${SECRET}@h/db?foo=1` }, /unknown parameter "foo"/],
    [{ url: `postgres://u:${SECRET}@h/db?sslmode=maybe` }, /sslmode must be one of/],
    [{ url: `postgres://u@/db?host=run` }, /host= must be a Unix socket directory/],
    [{ url: `postgres://u:${SECRET}@/db` }, /name the host, or a socket directory/],
    [{ url: 5432 }, /^store\.url: expected a string, got a number$/],
    [{}, /^store\.url: required$/],
    [{ uri: "x" }, /^store\.uri: unknown key \(did you mean "url"\?\)/],
    ["postgres://x", /^store: expected an object, got a string$/],
  ];
  for (const [store, expected] of cases) {
    const found = problems(store);
    assert.ok(found.some((p) => expected.test(p)), `${JSON.stringify(store)}: ${found.join("\n")}`);
    for (const p of found) assert.ok(!p.includes(SECRET), p);
  }
});

Deno.test("store.url: the derived flags reach the database and nothing of the KV store", () => {
  const flags = (url: string) => derivePermissions(load({ url }), SOURCE);
  const tcp = flags(`postgres://mop:${SECRET}@db.internal:6543/proxy`);
  const net = tcp.find((f) => f.startsWith("--allow-net="))!;
  assert.ok(net.split("=")[1].split(",").includes("db.internal:6543"), net);
  const env = tcp.find((f) => f.startsWith("--allow-env="))!;
  for (const name of POSTGRES_ENV) assert.ok(env.includes(name), env);
  assert.ok(!tcp.includes("--unstable-kv"));
  assert.ok(!tcp.some((f) => f.includes("/srv/mop/data")), tcp.join(" "));
  assert.ok(!tcp.some((f) => f.includes(SECRET)));
  const v6 = flags("postgres://mop@[::1]/proxy").find((f) => f.startsWith("--allow-net="))!;
  assert.ok(v6.includes("[::1]:5432"), v6);
  const unix = flags("postgres://mop@/proxy?host=/run/postgresql");
  const socket = "/run/postgresql/.s.PGSQL.5432";
  assert.ok(unix.find((f) => f.startsWith("--allow-read="))!.includes(socket));
  assert.ok(unix.find((f) => f.startsWith("--allow-write="))!.includes(socket));
});
