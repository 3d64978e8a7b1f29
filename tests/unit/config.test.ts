/** Config validation: every kind of mistake names its key path; good configs normalise. */
import assert from "node:assert/strict";
import { ConfigError } from "../../lib/config/check.ts";
import { loadConfig, parseConfigText } from "../../lib/config/load.ts";
import { derivePermissions } from "../../lib/permissions/derive.ts";

const SOURCE = "/etc/mop/config.json";
const env = (vars: Record<string, string> = {}) => (name: string) => vars[name];

function load(config: unknown, vars: Record<string, string> = {}) {
  return parseConfigText(typeof config === "string" ? config : JSON.stringify(config), {
    source: SOURCE,
    env: env(vars),
  });
}

function problems(config: unknown, vars: Record<string, string> = {}): string[] {
  try {
    load(config, vars);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  assert.fail("expected a ConfigError");
}

const files = { command: "npx", args: ["-y", "@modelcontextprotocol/server-filesystem", "/srv"] };

Deno.test("a good config is normalised with defaults and resolved paths", () => {
  const { config, notices } = load({
    listen: "127.0.0.1:9000",
    dataDir: "state",
    mcpServers: {
      files: {
        ...files,
        env: { LOG_LEVEL: "info" },
        cwd: "../work",
        mode: "shared",
        idleTimeout: "90s",
      },
      time: { command: "uvx", args: ["mcp-server-time"], requestTimeout: 30, maxInFlight: 4 },
    },
    limits: { maxMessageIn: "1MiB", childrenPerUser: 2, ipv6Prefix: 56 },
  });
  assert.deepEqual(notices, []);
  assert.deepEqual(config.listen, { hostname: "127.0.0.1", port: 9000 });
  assert.equal(config.dataDir, "/etc/mop/state");
  const [f, t] = config.servers;
  assert.equal(f.cwd, "/etc/work");
  assert.equal(f.mode, "shared");
  assert.equal(f.idleTimeoutMs, 90_000);
  assert.deepEqual(f.env, { LOG_LEVEL: "info" });
  assert.equal(t.mode, "per-user");
  assert.equal(t.requestTimeoutMs, 30_000);
  assert.equal(t.maxInFlight, 4);
  assert.equal(t.idleTimeoutMs, 600_000);
  assert.equal(config.limits.maxMessageInBytes, 1024 * 1024);
  assert.equal(config.limits.maxMessageOutBytes, 16 * 1024 * 1024);
  assert.equal(config.limits.childrenPerUser, 2);
  assert.equal(config.limits.childrenTotal, 32);
  assert.equal(config.limits.ipv6Prefix, 56);
  assert.equal(load({ mcpServers: { files } }).config.limits.ipv6Prefix, 64, "default /64");
  assert.equal(config.limits.sessionsPerUser, 100);
  assert.equal(config.limits.resumeBufferBytes, 32 * 1024 * 1024);
  const sessions = load({
    mcpServers: { files },
    limits: { sessionsPerUser: 5, resumeBuffer: "1MiB" },
  }).config.limits;
  assert.equal(sessions.sessionsPerUser, 5);
  assert.equal(sessions.resumeBufferBytes, 1024 * 1024);
  assert.equal(config.legacySse, true);
});

Deno.test("every kind of mistake is reported with its key path", () => {
  const cases: Array<[unknown, RegExp]> = [
    [
      { mcpServers: { files: { command: "npx", args: ["-y", 3] } } },
      /^mcpServers\.files\.args\[1\]: expected a string, got a number$/,
    ],
    [{ mcpServers: { files: { args: [] } } }, /^mcpServers\.files\.command: required$/],
    [{ mcpServers: { files: { command: 5 } } }, /^mcpServers\.files\.command: expected a string/],
    [
      { mcpServers: { files: { comand: "npx" } } },
      /^mcpServers\.files\.comand: unknown key \(did you mean "command"\?\)$/,
    ],
    [
      { listne: "127.0.0.1:1", mcpServers: { files } },
      /^listne: unknown key \(did you mean "listen"\?\)$/,
    ],
    [
      { mcpServers: { "Bad Name": files } },
      /^mcpServers\["Bad Name"\]: server names use lower-case/,
    ],
    [
      { mcpServers: { files: { ...files, mode: "per-request" } } },
      /^mcpServers\.files\.mode: expected one of "per-user", "per-session", "shared"$/,
    ],
    [
      { mcpServers: { files: { ...files, type: "sse" } } },
      /^mcpServers\.files\.type: "sse" servers are not bridged: only stdio servers are$/,
    ],
    [
      { mcpServers: { remote: { url: "https://x.example/mcp" } } },
      /^mcpServers\.remote\.url: remote servers are not bridged/,
    ],
    [
      { mcpServers: { files: { ...files, env: { A: 1 } } } },
      /^mcpServers\.files\.env\.A: expected a string, got a number$/,
    ],
    [
      { mcpServers: { files: { ...files, idleTimeout: "soon" } } },
      /^mcpServers\.files\.idleTimeout: expected a duration/,
    ],
    [
      { mcpServers: { files: { ...files, maxInFlight: 0 } } },
      /^mcpServers\.files\.maxInFlight: must be between 1 and 10000$/,
    ],
    [
      { mcpServers: { files }, limits: { maxMessageIn: "lots" } },
      /^limits\.maxMessageIn: expected a size/,
    ],
    [
      { mcpServers: { files }, limits: { childrenPerUsr: 3 } },
      /^limits\.childrenPerUsr: unknown key \(did you mean "childrenPerUser"\?\)$/,
    ],
    [
      { mcpServers: { files }, limits: { sessionsPerUser: 0 } },
      /^limits\.sessionsPerUser: must be between 1 and 1000000$/,
    ],
    [
      { mcpServers: { files }, limits: { resumeBuffer: "lots" } },
      /^limits\.resumeBuffer: expected a size/,
    ],
    [
      { mcpServers: { files }, limits: { ipv6Prefix: 16 } },
      /^limits\.ipv6Prefix: must be between 32 and 128$/,
    ],
    [{ mcpServers: { files }, listen: "8080" }, /^listen: expected "HOST:PORT"/],
    [
      { mcpServers: { files }, listen: "127.0.0.1:65536" },
      /^listen: port 65536 is out of range: ports go from 1 to 65535 \(0 lets the system choose\)$/,
    ],
    [
      { mcpServers: { files }, globalShortcutt: "" },
      /^globalShortcutt: unknown key$/,
    ],
    [
      { mcpServers: { files }, listen: "0.0.0.0:8080" },
      /^listen: "0\.0\.0\.0" is not a loopback address/,
    ],
    [
      { mcpServers: { files }, allowedOrigins: ["localhost"] },
      /^allowedOrigins\[0\]: expected an origin/,
    ],
    [{ mcpServers: { files }, legacySse: "yes" }, /^legacySse: expected true or false/],
    [{}, /^mcpServers: required/],
    [{ mcpServers: {} }, /^mcpServers: list at least one stdio server$/],
    [
      { mcpServers: { files: { ...files, disabled: true } } },
      /^mcpServers: every server is disabled/,
    ],
    [{ mcpServers: { files: "npx" } }, /^mcpServers\.files: expected an object, got a string$/],
    [[1, 2], /^: expected an object, got an array$|expected an object/],
  ];
  for (const [config, pattern] of cases) {
    const found = problems(config);
    assert.ok(
      found.some((p) => pattern.test(p)),
      `${JSON.stringify(config)} → ${JSON.stringify(found)}`,
    );
  }
});

Deno.test("all mistakes are reported at once", () => {
  const found = problems({
    mcpServers: { a: { command: 1 }, b: { command: "x", args: "y" } },
    bogus: true,
  });
  assert.equal(found.length, 3);
});

Deno.test("${VAR} is substituted from the environment; an unset one names its key", () => {
  const { config, envRefs } = load(
    { mcpServers: { gh: { command: "npx", env: { TOKEN: "${GH_TOKEN}", BOTH: "${A}-${B}" } } } },
    { GH_TOKEN: "t0k", A: "1", B: "2" },
  );
  assert.deepEqual(config.servers[0].env, { TOKEN: "t0k", BOTH: "1-2" });
  assert.deepEqual(envRefs, ["A", "B", "GH_TOKEN"]);
  assert.deepEqual(problems({ mcpServers: { gh: { command: "npx", args: ["${MISSING_VAR}"] } } }), [
    "mcpServers.gh.args[0]: environment variable MISSING_VAR is not set",
  ]);
});

Deno.test("Claude Desktop keys: disabled skips, type stdio is accepted, client-side keys are ignored with a notice", () => {
  const { config, notices } = load({
    mcpServers: {
      files: { ...files, type: "stdio", autoApprove: ["read"], alwaysAllow: [], timeout: 60 },
      off: { command: "npx", disabled: true },
    },
  });
  assert.deepEqual(config.servers.map((s) => s.name), ["files"]);
  assert.deepEqual(notices, [
    "mcpServers.files.autoApprove: ignored (a client-side setting the proxy does not use)",
    "mcpServers.files.alwaysAllow: ignored (a client-side setting the proxy does not use)",
    "mcpServers.files.timeout: ignored (a client-side setting the proxy does not use)",
    "mcpServers.off: skipped (disabled: true)",
  ]);
});

Deno.test("JSON syntax errors give the line and column", () => {
  // (A trailing comma is allowed, see jsonc.test.ts; a missing one is the mistake here.)
  const found = problems('{\n  "mcpServers": {\n    "a": { "command": "x" "args": [] }\n  }\n}');
  assert.equal(found.length, 1);
  assert.match(found[0], /^\/etc\/mop\/config\.json: not valid JSON \(.* at line 3, column \d+\)$/);
});

Deno.test("IPv6 loopback and localhost listen addresses are accepted", () => {
  assert.deepEqual(load({ listen: "[::1]:8080", mcpServers: { files } }).config.listen, {
    hostname: "::1",
    port: 8080,
  });
  assert.deepEqual(load({ listen: "localhost:0", mcpServers: { files } }).config.listen, {
    hostname: "localhost",
    port: 0,
  });
});

Deno.test("permission flags are derived from the config, nothing broader", () => {
  const loaded = load(
    {
      listen: "127.0.0.1:8080",
      dataDir: "/var/lib/mop",
      mcpServers: {
        files,
        time: { command: "uvx", args: ["mcp-server-time"] },
        more: { command: "npx", args: ["other"], env: { KEY: "${API_KEY}" } },
      },
    },
    { API_KEY: "k" },
  );
  assert.deepEqual(derivePermissions(loaded, SOURCE), [
    "--no-prompt",
    "--allow-net=127.0.0.1:8080,127.0.0.1:8081",
    "--allow-read=/etc/mop/config.json,/dev/null,/var/lib/mop",
    "--allow-write=/var/lib/mop",
    "--allow-run=npx,uvx,kill",
    "--allow-env=PATH,HOME,USER,LANG,LC_*,TZ,MCP_PROXY_CONFIG,API_KEY",
    "--v8-flags=--max-semi-space-size=1",
    "--unstable-no-legacy-abort",
  ]);
  const v6 = load({ listen: "[::1]:0", dataDir: "/d", mcpServers: { files } });
  assert.equal(derivePermissions(v6, SOURCE)[1], "--allow-net=[::1],127.0.0.1");
});

Deno.test("server filters: tools, prompts, resources and readOnly are read and checked", () => {
  const { config } = load({
    mcpServers: {
      files: {
        ...files,
        tools: { allow: ["read_*", "list_*"], deny: ["*write*"] },
        readOnly: true,
        prompts: { deny: ["*"] },
        resources: { allow: ["file:///srv/shared/public/**"] },
      },
      open: { ...files, readOnly: false },
    },
  });
  assert.deepEqual(config.servers[0].policy, {
    tools: { allow: ["read_*", "list_*"], deny: ["*write*"] },
    prompts: { deny: ["*"] },
    resources: { allow: ["file:///srv/shared/public/**"] },
    readOnly: true,
  });
  assert.equal(config.servers[1].policy, undefined);
  assert.deepEqual(
    problems({
      mcpServers: {
        files: {
          ...files,
          tools: { allow: "read_*", deny: ["{a,b}"], denny: [] },
          prompts: ["*"],
          resources: {},
          readOnly: "yes",
        },
        more: { ...files, resources: { allow: ["file:///a/***", 3, "[x]"] } },
      },
    }),
    [
      `mcpServers.files.tools.denny: unknown key (did you mean "deny"?)`,
      `mcpServers.files.tools.allow: expected an array of glob patterns, got a string (write ["read_*"])`,
      `mcpServers.files.tools.deny[0]: bad pattern "{a,b}": brace alternatives ("{a,b}") are not ` +
      `supported; write one pattern per alternative`,
      "mcpServers.files.prompts: expected an object, got an array",
      `mcpServers.files.resources: expected "allow" and/or "deny" (lists of glob patterns)`,
      "mcpServers.files.readOnly: expected true or false, got a string",
      `mcpServers.more.resources.allow[0]: bad pattern "file:///a/***": "***": use "*" or "**"`,
      "mcpServers.more.resources.allow[1]: expected a string, got a number",
      `mcpServers.more.resources.allow[2]: bad pattern "[x]": character classes ("[...]") are not ` +
      `supported; write "\\[" for a literal "["`,
    ],
  );
  assert.deepEqual(problems({ mcpServers: { files: { ...files, tool: {} } } }), [
    `mcpServers.files.tool: unknown key (did you mean "tools"?)`,
  ]);
});

Deno.test("no config file at the default path: the demo, its data directory in the given cwd", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    const { config } = await loadConfig("./config.json", { explicit: false, env: env(), cwd });
    assert.equal(config.demo, true);
    assert.equal(config.dataDir, `${cwd}/data`);
  } finally {
    await Deno.remove(cwd);
  }
});
