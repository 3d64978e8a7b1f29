/**
 * `main.ts check`: a good config prints the URLs, the callback URL and the proxy's permission
 * flags with no warning; each warning case gives exactly its warning and exit 0; a bad config
 * exits 2 naming the key path. The good config runs as a real process with exactly the flags
 * its `--print-flags` derives (as `deno task check-config` does), and so do the cases about the
 * flags; the other cases run the same code in this process (`runInProcess`).
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config/load.ts";
import { derivePermissions } from "../../lib/permissions/derive.ts";
import {
  cliEnv,
  type CliResult,
  derivedFlags,
  printedFlags,
  runInProcess,
  runMain,
  runNarrow,
  runNarrowInProcess,
} from "../helpers/cli.ts";

const ENV = cliEnv({ GITHUB_CLIENT_SECRET: "gh-secret-for-check" });

/** A config that deserves no warning. */
function goodConfig(dir: string): Record<string, unknown> {
  return {
    listen: "127.0.0.1:8080",
    publicUrl: "https://pi.tail1234.ts.net",
    dataDir: `${dir}/data`,
    github: { clientId: "Ov23liCheck", clientSecret: "${GITHUB_CLIENT_SECRET}" },
    allow: { users: ["octocat"] },
    network: { trustedProxies: "tailscale", allow: ["anthropic", "192.0.2.0/24"] },
    mcpServers: {
      files: { command: "deno", args: ["run", "server.ts"] },
      notes: { command: "deno", args: ["run", "notes.ts"] },
    },
  };
}

/**
 * Writes `config` and runs check on it, in this process; with `process`, as a real process with
 * the flags its `--print-flags` derives.
 */
async function check(
  dir: string,
  config: Record<string, unknown> | string,
  env = ENV,
  options: { process?: boolean } = {},
): Promise<CliResult & { warnings: string[] }> {
  const path = `${dir}/config.json`;
  await Deno.writeTextFile(
    path,
    typeof config === "string" ? config : JSON.stringify(config, null, 2),
  );
  const res = await (options.process ? runNarrow : runNarrowInProcess)("check", path, [], {
    env,
    cwd: dir,
  });
  const warnings = res.stdout.split("\n").filter((l) => l.startsWith("warning: ")).map((l) =>
    l.slice("warning: ".length)
  );
  return { ...res, warnings };
}

/** A named edit of the good config and what check must say about it. */
type Case = [string, (dir: string, c: Record<string, unknown>) => Promise<void> | void, RegExp];

/** Runs check on the good config after `edit`. */
async function checkEdited(
  dir: string,
  edit: Case[1],
): Promise<CliResult & { warnings: string[] }> {
  const config = goodConfig(dir);
  await edit(dir, config);
  return await check(dir, config);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mop-check-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("check: a good config prints URLs, the callback and the flags, with no warning", async () => {
  await withDir(async (dir) => {
    const res = await check(dir, goodConfig(dir), ENV, { process: true });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, "");
    const loaded = await loadConfig(`${dir}/config.json`, {
      explicit: true,
      env: (name) => ENV[name],
      cwd: dir,
    });
    const flags = derivePermissions(loaded, `${dir}/config.json`).join(" ");
    assert.equal(
      res.stdout,
      [
        `${dir}/config.json: valid`,
        "",
        "servers (the URLs to paste into ChatGPT and Claude):",
        "  files  https://pi.tail1234.ts.net/mcp/files",
        "  notes  https://pi.tail1234.ts.net/mcp/notes",
        "GitHub OAuth App callback URL: https://pi.tail1234.ts.net/auth/callback",
        "GitHub OAuth App homepage URL: https://pi.tail1234.ts.net",
        "owner endpoints (this machine only): http://127.0.0.1:8081/metrics, http://127.0.0.1:8081/healthz",
        "",
        'permission flags ("deno task start" runs the proxy with exactly these):',
        `  ${flags}`,
        "",
        "no warnings",
        "",
      ].join("\n"),
    );
    // The writability test left nothing behind: the missing data directory is still missing.
    await assert.rejects(Deno.stat(`${dir}/data`), Deno.errors.NotFound);
    // An existing data directory is tested with a file that is removed again.
    await Deno.mkdir(`${dir}/data`);
    const again = await check(dir, goodConfig(dir));
    assert.deepEqual(again.warnings, []);
    assert.deepEqual([...Deno.readDirSync(`${dir}/data`)], []);
  });
});

Deno.test("check: the merged endpoint has its own line when enabled", async () => {
  await withDir(async (dir) => {
    const res = await check(dir, { ...goodConfig(dir), merged: { enabled: true } });
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.split("\n");
    const at = lines.indexOf("servers (the URLs to paste into ChatGPT and Claude):");
    assert.deepEqual(lines.slice(at + 1, at + 4), [
      "  files     https://pi.tail1234.ts.net/mcp/files",
      "  notes     https://pi.tail1234.ts.net/mcp/notes",
      "  (merged)  https://pi.tail1234.ts.net/mcp  (every server the person may use)",
    ]);
  });
});

Deno.test("check: a filtered server's rules are printed under its URL", async () => {
  await withDir(async (dir) => {
    const config = goodConfig(dir);
    const servers = config.mcpServers as Record<string, Record<string, unknown>>;
    servers.files = {
      ...servers.files,
      readOnly: true,
      tools: { deny: ["read_media_file"] },
      prompts: { deny: ["*"] },
    };
    const res = await check(dir, config);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(
      res.stdout.includes(
        "  files  https://pi.tail1234.ts.net/mcp/files\n" +
          '         filters: tools deny "read_media_file"; readOnly; prompts deny "*"\n' +
          "  notes  https://pi.tail1234.ts.net/mcp/notes\n",
      ),
      res.stdout,
    );
  });
});

Deno.test("check --print-flags: exactly what check needs, no net, no run", async () => {
  await withDir(async (dir) => {
    const config = goodConfig(dir);
    (config.mcpServers as Record<string, unknown>).local = { command: "./bin/tool", cwd: "." };
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
    const path = "/usr/local/bin:/usr/bin:relative/bin";
    const flags = await printedFlags("check", `${dir}/config.json`, {
      cwd: dir,
      env: { PATH: path },
    });
    assert.deepEqual(flags, [
      "--no-prompt",
      `--allow-read=${dir}/config.json,${dir}/data,/usr/local/bin,/usr/bin,${dir}/relative/bin,${dir}/bin/tool`,
      `--allow-write=${dir}/data`,
      "--allow-env=MCP_PROXY_CONFIG,GITHUB_CLIENT_SECRET,PATH",
    ]);
    // The flags the other tests run check with are this output, derived in-process.
    assert.deepEqual(
      await derivedFlags("check", `${dir}/config.json`, { cwd: dir, env: { PATH: path } }),
      flags,
    );
    // A config with mistakes: enough to read it, so check itself reports them.
    await Deno.writeTextFile(`${dir}/config.json`, "{ nope");
    assert.deepEqual(await printedFlags("check", `${dir}/config.json`, { cwd: dir }), [
      "--no-prompt",
      `--allow-read=${dir}/config.json`,
      "--allow-env",
    ]);
    assert.deepEqual(await derivedFlags("check", `${dir}/config.json`, { cwd: dir }), [
      "--no-prompt",
      `--allow-read=${dir}/config.json`,
      "--allow-env",
    ]);
  });
});

Deno.test("check: each warning case gives its warning, and exit 0", async (t) => {
  const cases: Case[] = [
    [
      "public URL not https",
      (_, c) => {
        c.publicUrl = "http://127.0.0.1:8080";
      },
      /^publicUrl http:\/\/127\.0\.0\.1:8080 is not https: only clients on this machine/,
    ],
    [
      "no network.allow list",
      (_, c) => {
        c.network = { trustedProxies: "tailscale" };
      },
      /^no network\.allow list: any address on the internet may call \/mcp/,
    ],
    [
      "a command not on PATH",
      (_, c) => {
        (c.mcpServers as Record<string, unknown>).files = { command: "no-such-command-mop" };
      },
      /^mcpServers\.files\.command "no-such-command-mop": not found in any PATH directory \(/,
    ],
    [
      "a command given as a path that does not exist",
      (_, c) => {
        (c.mcpServers as Record<string, unknown>).files = { command: "./bin/tool", cwd: "." };
      },
      /^mcpServers\.files\.command "\.\/bin\/tool": \/.*\/bin\/tool does not exist$/,
    ],
    [
      "a command without the execute bit",
      async (dir, c) => {
        await Deno.mkdir(`${dir}/bin`);
        await Deno.writeTextFile(`${dir}/bin/tool`, "#!/bin/sh\n", { mode: 0o644 });
        (c.mcpServers as Record<string, unknown>).files = { command: "./bin/tool", cwd: "." };
      },
      /^mcpServers\.files\.command "\.\/bin\/tool": \/.*\/bin\/tool is not executable/,
    ],
    [
      "a command on PATH without the execute bit",
      async (dir, c) => {
        await Deno.mkdir(`${dir}/pathbin`);
        await Deno.writeTextFile(`${dir}/pathbin/mop-tool`, "#!/bin/sh\n", { mode: 0o644 });
        (c.mcpServers as Record<string, unknown>).files = {
          command: "mop-tool",
          env: { PATH: `${dir}/pathbin` },
        };
      },
      /^mcpServers\.files\.command "mop-tool": \/.*\/pathbin\/mop-tool is on PATH but not executable/,
    ],
    [
      "the client secret written in the file",
      (_, c) => {
        c.github = {
          clientId: "Ov23liCheck",
          clientSecret: "0123456789abcdef0123456789abcdef01234567",
        };
      },
      /^github\.clientSecret is written in the file itself: whoever reads \/.*\/config\.json .* Write "\$\{GITHUB_CLIENT_SECRET\}" there and set GITHUB_CLIENT_SECRET when the proxy starts/,
    ],
    [
      "a tunnel preset with a non-loopback listen address",
      (_, c) => {
        c.listen = "0.0.0.0:8080";
        c.network = { trustedProxies: "ngrok", allow: ["anthropic"] };
      },
      /^network\.trustedProxies "ngrok" believes forwarded headers only from loopback peers, but listen is 0\.0\.0\.0/,
    ],
    [
      "a public URL behind a tunnel without trustedProxies",
      (_, c) => {
        c.network = { allow: ["anthropic"] };
      },
      /^publicUrl https:\/\/pi\.tail1234\.ts\.net is reached through a tunnel or proxy, but network\.trustedProxies is not set: .* \("tailscale", "ngrok", "cloudflare"\)/,
    ],
  ];
  for (const [name, edit, expected] of cases) {
    await t.step(name, async () => {
      await withDir(async (dir) => {
        const res = await checkEdited(dir, edit);
        assert.equal(res.code, 0, res.stderr);
        assert.equal(res.warnings.length, 1, res.stdout);
        assert.match(res.warnings[0], expected);
        assert.match(res.stdout, /\n1 warning\n$/);
        assert.ok(!res.stdout.includes("0123456789abcdef"), "the secret is never printed");
      });
    });
  }

  await t.step("the secret variable not set here is a warning, not an error", async () => {
    await withDir(async (dir) => {
      const res = await check(dir, goodConfig(dir), cliEnv());
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(res.warnings.map((w) => w.slice(0, 80)), [
        "github.clientSecret: the environment variable GITHUB_CLIENT_SECRET is not set he",
      ]);
    });
  });

  await t.step(
    "without write permission the data directory is reported as not tested",
    async () => {
      await withDir(async (dir) => {
        const config = goodConfig(dir);
        await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
        const flags = (await derivedFlags("check", `${dir}/config.json`, { env: ENV }))
          .filter((f) => !f.startsWith("--allow-write"));
        const res = await runMain(flags, ["check", "--config", `${dir}/config.json`], { env: ENV });
        assert.equal(res.code, 0, res.stderr);
        assert.match(
          res.stdout,
          new RegExp(`warning: dataDir ${dir}/data: not tested: .*--allow-write=${dir}/data\\)`),
        );
      });
    },
  );
});

Deno.test("check: a bad config exits 2 naming the key path", async () => {
  await withDir(async (dir) => {
    const config = goodConfig(dir);
    (config.mcpServers as Record<string, unknown>).files = { command: "deno", args: ["-y", 7] };
    config.alow = {};
    (config.mcpServers as Record<string, unknown>).notes = {
      command: "deno",
      tools: { deny: ["{read,write}_*"] },
    };
    const res = await check(dir, config);
    assert.equal(res.code, 2);
    assert.equal(res.stdout, "");
    assert.match(res.stderr, new RegExp(`^config error \\(${dir}/config.json\\):\\n`));
    assert.match(res.stderr, /\n {2}mcpServers\.files\.args\[1\]: expected a string, got a number/);
    assert.match(res.stderr, /\n {2}alow: unknown key \(did you mean "allow"\?\)/);
    assert.match(
      res.stderr,
      /\n {2}mcpServers\.notes\.tools\.deny\[0\]: bad pattern "\{read,write\}_\*": brace alternatives/,
    );

    // JSONC: comments are fine, a syntax error names its line and column.
    const syntax = await check(
      dir,
      `{\n  // the servers\n  "mcpServers": { "a": { "command": "deno" } }\n  "listen": "127.0.0.1:1"\n}`,
    );
    assert.equal(syntax.code, 2);
    assert.match(syntax.stderr, /not valid JSON \(Expected ',' or '\}' .* at line 4, column 3\)/);

    // An unset variable other than the client secret is an error, as at start.
    const unset = goodConfig(dir);
    unset.publicUrl = "${MOP_PUBLIC_URL}";
    const env = await check(dir, unset);
    assert.equal(env.code, 2);
    assert.match(env.stderr, /publicUrl: environment variable MOP_PUBLIC_URL is not set/);

    const missing = await runInProcess(["check", "--config", `${dir}/nope.json`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.json: config file not found/);
  });
});

Deno.test("check: each mistake the proxy would trip on is an error: exit 2, named", async (t) => {
  const cases: Case[] = [
    [
      "a publicUrl that is a server's URL",
      (_, c) => {
        c.publicUrl = "https://pi.tail1234.ts.net/mcp/files";
      },
      /^publicUrl: ends in \/mcp\/files, like a server's URL, .* so files would be at https:\/\/pi\.tail1234\.ts\.net\/mcp\/files\/mcp\/files\. Use "https:\/\/pi\.tail1234\.ts\.net"$/,
    ],
    [
      "a publicUrl ending in /mcp, after a secret path",
      (_, c) => {
        c.publicUrl = "https://pi.tail1234.ts.net/k3J9xQ/mcp/";
      },
      /^publicUrl: ends in \/mcp, .* at https:\/\/pi\.tail1234\.ts\.net\/k3J9xQ\/mcp\/mcp\/files\. Use "https:\/\/pi\.tail1234\.ts\.net\/k3J9xQ"$/,
    ],
    [
      "a CIDR with host bits set in network.allow",
      (_, c) => {
        c.network = { trustedProxies: "tailscale", allow: ["anthropic", "192.168.1.5/24"] };
      },
      /^network\.allow\[1\]: 192\.168\.1\.5\/24: host bits are set: the network is 192\.168\.1\.0\/24 \(write that, or 192\.168\.1\.5\/32 for the one address\)$/,
    ],
    [
      "a CIDR with host bits set in network.trustedProxies",
      (_, c) => {
        c.network = { trustedProxies: ["10.0.0.0/8", "2001:db8::1/64"], allow: ["anthropic"] };
      },
      /^network\.trustedProxies\[1\]: 2001:db8::1\/64: host bits are set: the network is 2001:db8::\/64 /,
    ],
    [
      "a port out of range",
      (_, c) => {
        c.listen = "127.0.0.1:80800";
      },
      /^listen: port 80800 is out of range: ports go from 1 to 65535 \(0 lets the system choose\)$/,
    ],
    [
      "a data directory that is a file",
      async (dir, c) => {
        await Deno.writeTextFile(`${dir}/datafile`, "");
        c.dataDir = `${dir}/datafile`;
      },
      /^dataDir \/.*\/datafile: is a file, not a directory: point dataDir at a folder/,
    ],
    [
      "a data directory that cannot be created",
      async (dir, c) => {
        await Deno.writeTextFile(`${dir}/blocker`, "");
        c.dataDir = `${dir}/blocker/data`;
      },
      /^dataDir \/.*\/blocker\/data: cannot be created: Not a directory/,
    ],
  ];
  for (const [name, edit, expected] of cases) {
    await t.step(name, async () => {
      await withDir(async (dir) => {
        const res = await checkEdited(dir, edit);
        assert.equal(res.code, 2, res.stdout);
        assert.equal(res.stdout, "");
        const lines = res.stderr.trimEnd().split("\n");
        assert.equal(lines[0], `config error (${dir}/config.json):`);
        assert.equal(lines.length, 2, res.stderr);
        assert.match(lines[1].slice(2), expected);
      });
    });
  }

  await t.step("a key written twice (two servers with one name)", async () => {
    await withDir(async (dir) => {
      const res = await check(
        dir,
        [
          `{`,
          `  "listen": "127.0.0.1:1",`,
          `  "listen": "127.0.0.1:8080", // line 3`,
          `  "dataDir": ${JSON.stringify(`${dir}/data`)},`,
          `  "mcpServers": {`,
          `    "files": { "command": "deno", "args": ["a.ts"] }, // line 6`,
          `    /* another server */`,
          `    "files": { "command": "deno", "args": ["b.ts"] }, // line 8`,
          `  },`,
          `}`,
        ].join("\n"),
      );
      assert.equal(res.code, 2, res.stdout);
      assert.equal(
        res.stderr,
        `config error (${dir}/config.json):\n` +
          `  listen: written twice (lines 2 and 3); JSON would keep only the last one silently: ` +
          `rename or merge them\n` +
          `  mcpServers.files: written twice (lines 6 and 8); JSON would keep only the last ` +
          `one silently: rename or merge them\n`,
      );
    });
  });
});

Deno.test("check: a whole Claude Desktop config file is accepted, its own settings noticed", async () => {
  await withDir(async (dir) => {
    const res = await check(dir, {
      globalShortcut: "Ctrl+Space",
      preferences: { menuBarEnabled: false },
      mcpServers: {
        files: { command: "deno", args: ["run", "server.ts"], env: { A: "1" } },
      },
      dataDir: `${dir}/data`,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stdout,
      /^config notice: globalShortcut: ignored \(a client-side setting the proxy does not use\)\nconfig notice: preferences: ignored /,
    );
    assert.match(res.stdout, /\/config\.json: valid\n/);
  });
});

Deno.test("check: a config without login shows local URLs", async () => {
  await withDir(async (dir) => {
    const res = await check(dir, {
      listen: "127.0.0.1:0",
      dataDir: `${dir}/data`,
      mcpServers: { files: { command: "deno" } },
    });
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stdout,
      /servers \(local, without login: serve it with --no-auth\):\n {2}files {2}http:\/\/127\.0\.0\.1:<port chosen at start>\/mcp\/files\n/,
    );
    assert.match(res.stdout, /login: not configured/);
    assert.match(
      res.stdout,
      /^owner endpoints \(this machine only\): http:\/\/127\.0\.0\.1:<port chosen at start>\/metrics, /m,
    );
    assert.deepEqual(res.warnings, []);
  });
});

Deno.test("check: a server with its own allow shows who may use it; a user the global list never admits is a warning", async () => {
  await withDir(async (dir) => {
    const config = goodConfig(dir);
    (config.mcpServers as Record<string, Record<string, unknown>>).files.allow = {
      users: ["OctoCat", 42, "hubot"],
      teams: ["acme/ops"],
    };
    const res = await check(dir, config);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.split("\n");
    const at = lines.indexOf("  files  https://pi.tail1234.ts.net/mcp/files");
    assert.ok(at >= 0, res.stdout);
    assert.equal(
      lines[at + 1],
      "         only for: users octocat, hubot, 42; teams acme/ops (and on the global allow-list)",
    );
    assert.equal(lines[at + 2], "  notes  https://pi.tail1234.ts.net/mcp/notes", "notes is open");
    // hubot is not on the global list (users only, by login): it can never get in. The id 42 is
    // not decidable against a list of logins.
    assert.deepEqual(res.warnings, [
      "mcpServers.files.allow.users: hubot is not on the global allow-list, so it can never " +
      "use files (a server's allow only narrows the global one)",
    ]);
  });
});
