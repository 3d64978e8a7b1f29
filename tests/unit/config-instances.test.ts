/** The `instances` section: the internal listener, the shared secret, clear mistakes. */
import assert from "node:assert/strict";
import { ConfigError } from "../../lib/config/check.ts";
import { parseConfigText } from "../../lib/config/load.ts";
import { derivePermissions } from "../../lib/permissions/derive.ts";

const SOURCE = "/etc/mop/config.json";
const SECRET = "0123456789abcdef0123456789abcdef";
const files = { command: "npx", args: ["server"] };

const STORE = { url: "postgres://mop:pw@db.internal:5432/mop" };

function load(instances: unknown, vars: Record<string, string> = {}, store: unknown = STORE) {
  return parseConfigText(
    JSON.stringify({
      listen: "127.0.0.1:8080",
      dataDir: "/d",
      mcpServers: { files },
      instances,
      ...(store === null ? {} : { store }),
    }),
    { source: SOURCE, env: (name) => vars[name] },
  );
}

function problems(instances: unknown, store: unknown = STORE): string[] {
  try {
    load(instances, {}, store);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("instances: absent is one instance; a good section is normalised", () => {
  assert.equal(
    parseConfigText(JSON.stringify({ mcpServers: { files } }), { source: SOURCE, env: () => "" })
      .config.instances,
    undefined,
  );
  const { config } = load(
    { listen: "127.0.0.1:0", secret: "${PROXY_PEER_SECRET}" },
    { PROXY_PEER_SECRET: SECRET },
  );
  assert.deepEqual(config.instances, {
    listen: { hostname: "127.0.0.1", port: 0 },
    secret: SECRET,
    peers: [],
  });
  const wide = load({
    listen: "0.0.0.0:7000",
    url: "http://10.0.0.5:7000/",
    secret: SECRET,
    peers: ["10.0.0.6:7000", "node-b.lan"],
  });
  assert.equal(wide.config.instances?.url, "http://10.0.0.5:7000");
});

Deno.test("instances: every mistake names its key and what to do", () => {
  assert.deepEqual(problems({}), ["instances.listen: required", "instances.secret: required"]);
  assert.deepEqual(problems({ listen: "127.0.0.1:8080", secret: "short" }), [
    'instances.listen: port 8080 is already "listen": the internal listener is a listener of ' +
    "its own, never the public one (a tunnel must not reach it); pick another port",
    "instances.secret: at least 32 characters, the same on every instance; generate one with " +
    '"openssl rand -base64 32" and pass it as "${PROXY_PEER_SECRET}"',
  ]);
  assert.match(problems({ listen: "127.0.0.1:8081", secret: SECRET })[0], /already "admin.listen"/);
  assert.deepEqual(problems({ listen: "127.0.0.1:7000", secret: SECRET }, null), [
    'instances: several instances share one store: add "store": { "url": "${DATABASE_URL}" } ' +
    "(PostgreSQL); the Deno KV file in dataDir serves one instance only",
  ]);
  assert.match(problems({ listen: "0.0.0.0:7000", secret: SECRET })[0], /^instances.url: required/);
  assert.match(
    problems({ listen: "127.0.0.1:7000", secret: SECRET, url: "ftp://x" })[0],
    /^instances.url: expected an http/,
  );
  assert.match(
    problems({ listen: "127.0.0.1:7000", secret: SECRET, url: "http://x:1/path" })[0],
    /^instances.url: expected scheme:\/\/host:port only/,
  );
  assert.match(
    problems({ listen: "127.0.0.1:7000", secret: SECRET, peers: ["http://x"] })[0],
    /^instances.peers\[0\]: expected "HOST" or "HOST:PORT"/,
  );
  assert.match(
    problems({ listen: "127.0.0.1:7000", secret: SECRET, lisen: 1 })[0],
    /^instances.lisen: unknown key \(did you mean "listen"\?\)/,
  );
});

Deno.test("instances: --allow-net adds the internal listener and the peers", () => {
  const loaded = load({
    listen: "10.0.0.5:7000",
    secret: SECRET,
    peers: ["10.0.0.6:7000"],
  });
  const net = derivePermissions(loaded, SOURCE).find((f) => f.startsWith("--allow-net="));
  assert.equal(
    net,
    "--allow-net=127.0.0.1:8080,127.0.0.1:8081,10.0.0.5:7000,10.0.0.6:7000,db.internal:5432",
  );
});
