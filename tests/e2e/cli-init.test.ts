/**
 * `main.ts init`: the starter config written from flags parses with the real parser and holds
 * the values; the printed GitHub OAuth App settings are exact; an existing file is never
 * touched; without a terminal, missing values exit 2 listing the options. The process runs with
 * the flags of `deno task init` (read and write of its folder). The questions asked on a
 * terminal are exercised in-process with a scripted terminal.
 */
import assert from "node:assert/strict";
import { parseConfigText } from "../../lib/config/load.ts";
import type { Io } from "../../lib/cli/common.ts";
import { runInit } from "../../lib/cli/init.ts";
import { type CliResult, runMain, runNarrow } from "../helpers/cli.ts";
import { processIo } from "../../lib/cli/common.ts";
import { MAIN, planTask, type Run } from "../../lib/cli/task-plan.ts";

/** Runs `main.ts init` in `dir` with exactly the flags `deno task init` derives for `args`. */
async function init(dir: string, args: string[]): Promise<CliResult> {
  const io = { ...processIo(), cwd: dir, env: () => undefined };
  const [run] = await planTask("init", args, io) as Run[];
  const flags = run.args.slice(1, run.args.indexOf(MAIN));
  return await runMain(flags, ["init", ...args], { cwd: dir });
}

const FLAGS = [
  "--public-url",
  "https://Pi.Tail1234.ts.net/",
  "--github-client-id",
  "Ov23liInitTest01",
  "--allow-user",
  "octocat",
  "--allow-user",
  "583231",
  "--server",
  "files",
  "--command",
  "deno",
  "--arg=-y",
  "--arg",
  "@modelcontextprotocol/server-filesystem",
  "--arg",
  "/srv/my files",
];

function parse(text: string, path: string, env: Record<string, string>) {
  return parseConfigText(text, { source: path, env: (name) => env[name] }).config;
}

Deno.test("init with flags writes a commented config the real parser accepts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-init-" });
  try {
    const res = await init(dir, FLAGS);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, "");
    const path = `${dir}/config.json`;
    const text = await Deno.readTextFile(path);
    // JSONC: comments explain the keys; the network section is there, commented out.
    assert.match(text, /^\/\/ mcp-oauth-proxy configuration/);
    assert.match(text, /\n {2}\/\/ "network": \{\n/);
    assert.match(text, /\/\/ {3}"trustedProxies": "tailscale",/);
    assert.match(text, /"tailscale" \(Funnel\), "cloudflare" \(cloudflared\) or "ngrok"/);
    assert.match(text, /\n {2}"dataDir": "\.\/data",\n/);
    assert.match(text, /"clientSecret": "\$\{GITHUB_CLIENT_SECRET\}"/);
    assert.ok(!text.includes("gh-secret"), "no secret in the file");

    const config = parse(text, path, { GITHUB_CLIENT_SECRET: "gh-secret" });
    assert.equal(config.auth?.publicUrl, "https://pi.tail1234.ts.net", "canonical public URL");
    assert.equal(config.auth?.github.clientId, "Ov23liInitTest01");
    assert.equal(config.auth?.github.clientSecret, "gh-secret");
    assert.equal(config.auth?.github.webUrl, "https://github.com");
    assert.deepEqual(config.auth?.allow.logins, ["octocat"]);
    assert.deepEqual(config.auth?.allow.ids, [583231]);
    assert.deepEqual(config.listen, { hostname: "127.0.0.1", port: 8080 });
    assert.equal(config.dataDir, `${dir}/data`);
    assert.deepEqual(config.servers.map((s) => [s.name, s.command, s.args]), [
      ["files", "deno", ["-y", "@modelcontextprotocol/server-filesystem", "/srv/my files"]],
    ]);
    assert.deepEqual(config.network.allow, [], "the network section is commented out");
    // Without the secret the parser names the variable: the file really references it.
    assert.throws(() => parse(text, path, {}), /environment variable GITHUB_CLIENT_SECRET/);

    // The printed settings, exactly.
    const out = res.stdout;
    assert.ok(out.startsWith(`Wrote ${path}.\n`), out);
    assert.ok(
      out.includes(
        [
          "1. Create a GitHub OAuth App at https://github.com/settings/developers",
          '   ("OAuth Apps", "New OAuth App") and enter exactly:',
          "     Application name            MCP proxy (pi.tail1234.ts.net)",
          "     Homepage URL                https://pi.tail1234.ts.net",
          "     Authorization callback URL  https://pi.tail1234.ts.net/auth/callback",
          '   Leave "Enable Device Flow" off.',
          "   Its Client ID must be Ov23liInitTest01 (github.clientId in the config).",
        ].join("\n"),
      ),
      out,
    );
    assert.ok(out.includes("     read -rs GITHUB_CLIENT_SECRET && export GITHUB_CLIENT_SECRET"));
    // Not the project's ./config.json: the start command names the file.
    assert.ok(
      out.includes(`\n     MCP_PROXY_CONFIG=${path} GITHUB_CLIENT_SECRET=… deno task start\n`),
      out,
    );
    assert.ok(out.includes("Point your tunnel at 127.0.0.1:8080 so that"), out);
    assert.ok(out.endsWith("\n     files  https://pi.tail1234.ts.net/mcp/files\n"), out);

    // The written config passes check (the secret set, as at start).
    const checked = await runNarrow("check", path, [], {
      env: { PATH: Deno.env.get("PATH")!, GITHUB_CLIENT_SECRET: "x" },
    });
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /^ {2}files {2}https:\/\/pi\.tail1234\.ts\.net\/mcp\/files$/m);
    // Only the commented-out network section is worth warnings: no allow-list, no tunnel preset.
    assert.deepEqual(
      checked.stdout.split("\n").filter((l) => l.startsWith("warning:")).map((l) => l.slice(0, 32)),
      ["warning: no network.allow list: ", "warning: publicUrl https://pi.ta"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("init never overwrites: the file stays byte-identical and exit is 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-init-" });
  try {
    const path = `${dir}/config.json`;
    assert.equal((await init(dir, FLAGS)).code, 0);
    const before = await Deno.readFile(path);
    const mtime = (await Deno.stat(path)).mtime;
    const again = await init(dir, [...FLAGS.slice(0, 2), "--public-url", "https://other.example"]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, new RegExp(`${path} already exists; init never overwrites a file`));
    assert.equal(again.stdout, "");
    assert.deepEqual(await Deno.readFile(path), before, "byte-identical");
    assert.deepEqual((await Deno.stat(path)).mtime, mtime);

    // Any file there, even an empty one, is left alone; --config writes elsewhere.
    await Deno.writeTextFile(`${dir}/mine.json`, "");
    const mine = await init(dir, [...FLAGS, "--config", "mine.json"]);
    assert.equal(mine.code, 2);
    assert.equal(await Deno.readTextFile(`${dir}/mine.json`), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("init without a terminal: missing or bad values exit 2 and nothing is written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-init-" });
  try {
    const missing = await init(dir, ["--public-url", "https://pi.example.com"]);
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      /stdin is not a terminal to ask\. Pass:\n {2}--github-client-id ID\n {2}--allow-user LOGIN_OR_ID\n {2}--server NAME\n {2}--command CMD\n/,
    );
    const none = await init(dir, []);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Pass:\n {2}--public-url URL\n/);

    const value = (flag: string, v: string) => {
      const args = [...FLAGS];
      args[args.indexOf(flag) + 1] = v;
      return init(dir, args);
    };
    const http = await value("--public-url", "http://pi.example.com");
    assert.equal(http.code, 2);
    assert.match(http.stderr, /publicUrl: must be https .* \(--public-url\)/);
    const name = await value("--server", "My Files");
    assert.equal(name.code, 2);
    assert.match(
      name.stderr,
      /mcpServers\["My Files"\]: server names use lower-case .* \(--server\)/,
    );
    const user = await value("--allow-user", "not a login!");
    assert.equal(user.code, 2);
    assert.match(user.stderr, /allow\.users\[\d\]: expected a GitHub login or a numeric user id/);
    const secret = await init(dir, [...FLAGS, "--github-secret-env", "MY-SECRET"]);
    assert.equal(secret.code, 2);
    assert.match(secret.stderr, /--github-secret-env: "MY-SECRET" is not a variable name/);
    const listen = await init(dir, [...FLAGS, "--listen", "nowhere"]);
    assert.equal(listen.code, 2);
    assert.match(listen.stderr, /listen: expected "HOST:PORT" .* \(--listen\)/);
    const flag = await init(dir, [...FLAGS, "--bogus"]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /Unknown option '--bogus'/);
    // Flags that do not cover the file: it is refused, naming the flags.
    const outside = await runMain(
      ["--no-prompt", "--allow-read=.", "--allow-write=."],
      ["init", ...FLAGS, "--config", "/tmp/mop-init-elsewhere.json"],
      { cwd: dir },
    );
    assert.equal(outside.code, 2);
    assert.match(
      outside.stderr,
      /init may not look at \/tmp\/mop-init-elsewhere\.json: run it as "deno run --allow-read=\/tmp\/mop-init-elsewhere\.json --allow-write=/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing was written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("init for GitHub Enterprise, another secret variable and listen address", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-init-" });
  try {
    const res = await init(dir, [
      "--public-url=https://mcp.example.org/k3J9xQ7vLm2",
      "--github-client-id=Iv1.0123456789abcdef",
      "--github-url=https://ghe.example.com/",
      "--github-secret-env=MOP_GH_SECRET",
      "--allow-user=alice",
      "--server=notes",
      "--command=uvx",
      "--listen=[::1]:9090",
      "--config=sub.json",
    ]);
    assert.equal(res.code, 0, res.stderr);
    const text = await Deno.readTextFile(`${dir}/sub.json`);
    const config = parse(text, `${dir}/sub.json`, { MOP_GH_SECRET: "s" });
    assert.equal(config.auth?.github.webUrl, "https://ghe.example.com");
    assert.equal(config.auth?.github.apiUrl, "https://ghe.example.com/api/v3");
    assert.deepEqual(config.listen, { hostname: "::1", port: 9090 });
    assert.deepEqual(config.servers.map((s) => [s.name, s.command, s.args]), [[
      "notes",
      "uvx",
      [],
    ]]);
    const out = res.stdout;
    assert.ok(
      out.includes("1. Create a GitHub OAuth App at https://ghe.example.com/settings/developers"),
      out,
    );
    // A secret path is part of every URL.
    assert.ok(
      out.includes(
        "     Authorization callback URL  https://mcp.example.org/k3J9xQ7vLm2/auth/callback\n",
      ),
      out,
    );
    assert.ok(out.includes("read -rs MOP_GH_SECRET && export MOP_GH_SECRET"), out);
    assert.ok(out.includes(`MCP_PROXY_CONFIG=${dir}/sub.json MOP_GH_SECRET=… deno task start`));
    assert.ok(out.includes("Point your tunnel at [::1]:9090"), out);
    assert.ok(out.endsWith("     notes  https://mcp.example.org/k3J9xQ7vLm2/mcp/notes\n"), out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A terminal that answers from a script and records what was shown. */
function scriptedIo(cwd: string, answers: string[]) {
  const output: string[] = [];
  const errors: string[] = [];
  const questions: string[] = [];
  const io: Io & { output: string[]; errors: string[]; questions: string[] } = {
    out: (line) => output.push(line),
    err: (line) => errors.push(line),
    interactive: true,
    ask: (question) => {
      questions.push(question);
      return answers.length ? answers.shift()! : null;
    },
    cwd,
    env: () => undefined,
    output,
    errors,
    questions,
  };
  return io;
}

Deno.test("init on a terminal asks for what the flags did not give, and re-asks bad answers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-init-" });
  try {
    const io = scriptedIo(dir, [
      "http://pi.example.com", // refused: not https
      "https://pi.example.com",
      "Ov23liAsked",
      "", // the default variable
      "octocat, 42",
      "Files", // refused: upper case
      "files",
      "npx",
      `-y "@scope/server one" /srv`,
      "y",
    ]);
    assert.equal(await runInit([], io), 0, io.errors.join("\n"));
    assert.deepEqual(io.questions, [
      "Public URL:",
      "Public URL:",
      "GitHub OAuth App Client ID:",
      "Environment variable that will hold its client secret [GITHUB_CLIENT_SECRET]:",
      "GitHub user allowed to sign in (login or numeric id; several: separate with commas):",
      "Server name (lower-case; its URL ends in /mcp/<name>), e.g. files:",
      "Server name (lower-case; its URL ends in /mcp/<name>), e.g. files:",
      "Command that starts it (e.g. npx, uvx, node):",
      "Its arguments, separated by spaces (quote one that contains spaces), empty for none:",
      `Write ${dir}/config.json? [Y/n]`,
    ]);
    assert.match(io.errors[0], /publicUrl: must be https/);
    assert.match(io.errors[1], /server names use lower-case/);
    // Before the client id is asked, the settings to create the app with are shown.
    const shown = io.output.join("\n");
    assert.ok(
      shown.includes("  Authorization callback URL  https://pi.example.com/auth/callback"),
      shown,
    );
    const config = parse(await Deno.readTextFile(`${dir}/config.json`), `${dir}/config.json`, {
      GITHUB_CLIENT_SECRET: "s",
    });
    assert.equal(config.auth?.github.clientId, "Ov23liAsked");
    assert.deepEqual(config.auth?.allow.logins, ["octocat"]);
    assert.deepEqual(config.auth?.allow.ids, [42]);
    assert.deepEqual(config.servers[0].args, ["-y", "@scope/server one", "/srv"]);

    // Flags answer their questions; --yes takes the defaults and does not confirm; a "no" at
    // the confirmation writes nothing; the end of input writes nothing.
    const partial = scriptedIo(dir, ["Ov23liX", "alice", "mem", "uvx"]);
    const code = await runInit(
      ["--public-url", "https://pi.example.com", "--yes", "--config", "two.json"],
      partial,
    );
    assert.equal(code, 0, partial.errors.join("\n"));
    assert.deepEqual(partial.questions.length, 4);
    assert.deepEqual(
      parse(await Deno.readTextFile(`${dir}/two.json`), `${dir}/two.json`, {
        GITHUB_CLIENT_SECRET: "s",
      }).servers.map((s) => [s.name, s.command, s.args]),
      [["mem", "uvx", []]],
    );
    const declined = scriptedIo(dir, ["n"]);
    assert.equal(await runInit([...FLAGS, "--config", "three.json"], declined), 1);
    const ended = scriptedIo(dir, []);
    assert.equal(await runInit(["--config", "four.json"], ended), 2);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["config.json", "two.json"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
