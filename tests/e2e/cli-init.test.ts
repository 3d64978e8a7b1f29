/**
 * `main.ts init`: the starter config written from flags parses with the real parser and holds
 * the values, with the chosen tunnel's preset; the printed GitHub OAuth App settings and tunnel
 * commands are exact; an existing file is never touched; without a terminal, missing values exit
 * 2 listing the options. On a terminal (a real pseudo-terminal), it asks the eight questions a
 * person answers, re-asks bad answers, shows a summary and confirms. The process runs with the
 * flags `deno task init` derives (read and write of the file it writes). The cases that only the
 * command's code decides run the same code in this process (`runInProcess`, and `runOnScreen`
 * for a terminal's questions and answers); the first of each kind, the flags, the terminal and
 * its end of input run as real processes.
 */
import assert from "node:assert/strict";
import { parseConfigText } from "../../lib/config/load.ts";
import { processIo } from "../../lib/cli/common.ts";
import { MAIN, planTask, type Run } from "../../lib/cli/task-plan.ts";
import {
  type CliResult,
  type Exchange,
  runInProcess,
  runMain,
  runNarrowInProcess,
  runOnScreen,
  runOnTerminal,
} from "../helpers/cli.ts";

/** The Deno flags `deno task init` derives for `args` in `dir`. */
async function taskFlags(dir: string, args: string[]): Promise<string[]> {
  const io = { ...processIo(), cwd: dir, env: () => undefined };
  const [run] = await planTask("init", args, io) as Run[];
  return run.args.slice(1, run.args.indexOf(MAIN));
}

/** Runs `main.ts init` in `dir` with exactly the flags of `deno task init`, stdin not a terminal. */
async function initProcess(dir: string, args: string[]): Promise<CliResult> {
  return await runMain(await taskFlags(dir, args), ["init", ...args], { cwd: dir });
}

/** `initProcess`, in this process. */
function init(dir: string, args: string[]): Promise<CliResult> {
  return runInProcess(["init", ...args], { cwd: dir });
}

/** `initOnTerminal`, in this process. */
function initOnScreen(dir: string, args: string[], dialogue: Exchange[]): Promise<CliResult> {
  return runOnScreen(["init", ...args], dialogue, { cwd: dir });
}

/** Runs `main.ts init` in `dir` on a terminal, with the task's flags, answering `dialogue`. */
async function initOnTerminal(
  dir: string,
  args: string[],
  dialogue: Exchange[],
): Promise<CliResult> {
  return await runOnTerminal(await taskFlags(dir, args), ["init", ...args], dialogue, {
    cwd: dir,
  });
}

const FLAGS = [
  "--public-url",
  "https://Pi.Tail1234.ts.net/",
  "--github-client-id",
  "Ov23liInitTestAbCd01",
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

Deno.test("init with flags writes a commented config the real parser accepts, with the tunnel's preset", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-init-" });
  try {
    const res = await initProcess(dir, FLAGS);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, "");
    const path = `${dir}/config.json`;
    const text = await Deno.readTextFile(path);
    // JSONC: comments explain the keys. A *.ts.net address is Tailscale Funnel's: the network
    // section names its preset, and the allow-list is there, commented out.
    assert.match(text, /^\/\/ mcp-oauth-proxy configuration/);
    assert.match(
      text,
      /\n {2}"network": \{\n {4}\/\/ The proxy is behind Tailscale Funnel: .*\n.*\n {4}"trustedProxies": "tailscale",\n/,
    );
    assert.match(text, /\n {4}\/\/ "allow": \["openai", "anthropic"\],\n {2}\},\n/);
    assert.match(text, /\n {2}"dataDir": "\.\/data",\n/);
    assert.match(text, /"clientSecret": "\$\{GITHUB_CLIENT_SECRET\}"/);
    assert.ok(!text.includes("gh-secret"), "no secret in the file");

    const config = parse(text, path, { GITHUB_CLIENT_SECRET: "gh-secret" });
    assert.equal(config.auth?.publicUrl, "https://pi.tail1234.ts.net", "canonical public URL");
    assert.equal(config.auth?.github.clientId, "Ov23liInitTestAbCd01");
    assert.equal(config.auth?.github.clientSecret, "gh-secret");
    assert.equal(config.auth?.github.webUrl, "https://github.com");
    assert.deepEqual(config.auth?.allow.logins, ["octocat"]);
    assert.deepEqual(config.auth?.allow.ids, [583231]);
    assert.deepEqual(config.listen, { hostname: "127.0.0.1", port: 8080 });
    assert.equal(config.dataDir, `${dir}/data`);
    assert.deepEqual(config.servers.map((s) => [s.name, s.command, s.args]), [
      ["files", "deno", ["-y", "@modelcontextprotocol/server-filesystem", "/srv/my files"]],
    ]);
    assert.equal(config.network.trustedProxies, "tailscale");
    assert.deepEqual(config.network.allow, [], "the allow-list is commented out");
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
          "   Its Client ID must be Ov23liInitTestAbCd01 (github.clientId in the config).",
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
    assert.ok(
      out.includes(
        [
          "4. Start Tailscale Funnel so that https://pi.tail1234.ts.net reaches http://127.0.0.1:8080:",
          "     sudo tailscale set --operator=$USER    # once, on Linux (or run the next line with sudo)",
          "     tailscale funnel --bg 8080",
          "",
          "5. In ChatGPT, first turn on Developer mode (Settings, Apps & Connectors, Advanced",
          "   settings; it needs a paid plan), then Create. In Claude: Settings, Connectors, Add custom",
          "   connector. Add each server with its URL:",
          "     files  https://pi.tail1234.ts.net/mcp/files",
          "",
        ].join("\n"),
      ),
      out,
    );

    // The written config passes check (the secret set, as at start).
    const checked = await runNarrowInProcess("check", path, [], {
      env: { PATH: Deno.env.get("PATH")!, GITHUB_CLIENT_SECRET: "x" },
    });
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /^ {2}files {2}https:\/\/pi\.tail1234\.ts\.net\/mcp\/files$/m);
    // Only the commented-out allow-list is worth a warning (the tunnel's preset is set).
    assert.deepEqual(
      checked.stdout.split("\n").filter((l) => l.startsWith("warning:")).map((l) => l.slice(0, 32)),
      ["warning: no network.allow list: "],
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
    // A client ID of the wrong shape, or the secret pasted in its place, is named.
    const id = await value("--github-client-id", "Ov23li-short");
    assert.equal(id.code, 2);
    assert.match(
      id.stderr,
      /github\.clientId: "Ov23li-short" is not a GitHub Client ID: it has 20 letters and digits, .* \(--github-client-id\)/,
    );
    const pasted = await value("--github-client-id", "0123456789abcdef0123456789abcdef01234567");
    assert.equal(pasted.code, 2);
    assert.match(pasted.stderr, /github\.clientId: that looks like the client secret/);
    assert.ok(!pasted.stderr.includes("0123456789abcdef0123"), "the secret is not repeated");
    const tunnel = await init(dir, [...FLAGS, "--tunnel", "wireguard"]);
    assert.equal(tunnel.code, 2);
    assert.match(
      tunnel.stderr,
      /^error: --tunnel: expected 1-4 or one of tailscale, cloudflare, ngrok, none\n$/,
    );
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
    // A host that names no known tunnel: none/other, the network section commented out.
    assert.equal(config.network.trustedProxies, undefined);
    assert.match(text, /\n {2}\/\/ "network": \{\n/);
    assert.match(text, /\/\/ {3}"trustedProxies": "tailscale",/);
    assert.ok(
      out.includes(
        "4. Point your reverse proxy or tunnel at http://[::1]:9090, and list its addresses in\n" +
          "   network.trustedProxies (docs/tunnels.md#another-reverse-proxy).\n",
      ),
      out,
    );
    assert.ok(out.endsWith("     notes  https://mcp.example.org/k3J9xQ7vLm2/mcp/notes\n"), out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("init --tunnel writes each tunnel's preset and prints its commands", async (t) => {
  const cases: [string, string, string, string[]][] = [
    ["cloudflare", "https://mcp.example.com", "cloudflare", [
      "4. Start Cloudflare Tunnel so that https://mcp.example.com reaches http://127.0.0.1:8080:",
      "     cloudflared tunnel login    # once: authorize your domain",
      "     cloudflared tunnel create mcp",
      "     cloudflared tunnel route dns mcp mcp.example.com",
      "     cloudflared tunnel run --url http://127.0.0.1:8080 mcp",
    ]],
    // A quick tunnel's address is recognised, and its drawback said.
    ["Cloudflare Tunnel", "https://three-words-here.trycloudflare.com", "cloudflare", [
      "4. Start Cloudflare Tunnel so that https://three-words-here.trycloudflare.com reaches http://127.0.0.1:8080:",
      "     cloudflared tunnel --url http://127.0.0.1:8080",
      "     # A quick tunnel gets a new address on every run: publicUrl and the GitHub OAuth",
    ]],
    ["3", "https://my-name.ngrok-free.app", "ngrok", [
      "4. Start ngrok so that https://my-name.ngrok-free.app reaches http://127.0.0.1:8080:",
      "     ngrok config add-authtoken <token>    # once, from the ngrok dashboard",
      "     ngrok http --url=my-name.ngrok-free.app 127.0.0.1:8080",
    ]],
  ];
  for (const [tunnel, url, preset, steps] of cases) {
    await t.step(`--tunnel ${tunnel}`, async () => {
      const dir = await Deno.makeTempDir({ prefix: "mop-init-" });
      try {
        const args = [...FLAGS, "--tunnel", tunnel];
        args[args.indexOf("--public-url") + 1] = url;
        const res = await init(dir, args);
        assert.equal(res.code, 0, res.stderr);
        const text = await Deno.readTextFile(`${dir}/config.json`);
        assert.equal(
          parse(text, `${dir}/config.json`, { GITHUB_CLIENT_SECRET: "s" }).network
            .trustedProxies,
          preset,
        );
        assert.ok(res.stdout.includes(`\n${steps.join("\n")}\n`), res.stdout);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
  // Without --tunnel the public URL's host tells (*.ngrok-free.app is ngrok's).
  const dir = await Deno.makeTempDir({ prefix: "mop-init-" });
  try {
    const args = [...FLAGS];
    args[args.indexOf("--public-url") + 1] = "https://my-name.ngrok-free.app";
    assert.equal((await init(dir, args)).code, 0);
    const text = await Deno.readTextFile(`${dir}/config.json`);
    assert.match(text, /\n {4}"trustedProxies": "ngrok",\n/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The questions init asks, in order, as shown on the terminal. */
const Q = {
  tunnel: "Tunnel (1-4 or its name) [tailscale]:",
  publicUrl: "Public URL:",
  clientId: "GitHub OAuth App Client ID:",
  secretEnv: "Environment variable that will hold its client secret [GITHUB_CLIENT_SECRET]:",
  users: "GitHub user allowed to sign in (login or numeric id; several: separate with commas):",
  server: "Server name (lower-case; its URL ends in /mcp/<name>), e.g. files:",
  command: "Command that starts it (e.g. npx, uvx, node):",
  args: "Its arguments, separated by spaces (quote one that contains spaces), empty for none:",
};

Deno.test("init on a terminal asks eight questions, re-asks bad answers, shows a summary and confirms", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-init-" });
  try {
    const path = `${dir}/config.json`;
    const res = await initOnTerminal(dir, [], [
      [Q.tunnel, "wireguard"], // refused: not a choice
      [Q.tunnel, "2"],
      [Q.publicUrl, "http://mcp.example.com"], // refused: not https
      [Q.publicUrl, "https://mcp.example.com"],
      [Q.clientId, "0123456789abcdef0123456789abcdef01234567"], // refused: the secret
      [Q.clientId, "Ov23li12"], // refused: too short
      [Q.clientId, "Ov23liAskedAbCdEf123"],
      [Q.secretEnv, ""], // the default variable
      [Q.users, "octocat, 42"],
      [Q.server, "Files"], // refused: upper case
      [Q.server, "files"],
      [Q.command, "npx"],
      [Q.args, `-y "@scope/server one" /srv`],
      [`Write ${path}? [Y/n]`, "y"],
    ]);
    assert.equal(res.code, 0, res.stdout);
    const screen = res.stdout;
    // The menu of tunnels comes before the first question; each refusal says why.
    assert.ok(
      screen.includes(
        "Which tunnel gives this machine its public https address? (docs/tunnels.md)\n" +
          "  1. Tailscale Funnel\n  2. Cloudflare Tunnel\n  3. ngrok\n  4. none/other\n",
      ),
      screen,
    );
    assert.match(screen, /\n {2}expected 1-4 or one of tailscale, cloudflare, ngrok, none\n/);
    // The chosen tunnel says where its public URL comes from.
    assert.match(screen, /\nA Cloudflare named tunnel's address is a host name on your domain/);
    assert.match(screen, /\n {2}publicUrl: must be https/);
    assert.match(screen, /\n {2}that looks like the client secret \(40 hex digits\)/);
    assert.match(
      screen,
      /\n {2}"Ov23li12" is not a GitHub Client ID: it has 20 letters and digits/,
    );
    assert.match(screen, /\n {2}mcpServers\.Files: server names use lower-case/);
    // Before the client id is asked, the settings to create the app with are shown.
    assert.ok(
      screen.includes("  Authorization callback URL  https://mcp.example.com/auth/callback"),
      screen,
    );
    // The summary, before the confirmation.
    assert.ok(
      screen.includes(
        [
          "Summary:",
          '  tunnel             Cloudflare Tunnel (network.trustedProxies "cloudflare")',
          "  public URL         https://mcp.example.com",
          "  GitHub             https://github.com, Client ID Ov23liAskedAbCdEf123",
          "  client secret      from the environment variable GITHUB_CLIENT_SECRET",
          "  who may sign in    octocat, 42",
          "  server             files: npx -y '@scope/server one' /srv",
          "  its URL            https://mcp.example.com/mcp/files",
          "  listen             127.0.0.1:8080",
          "",
          `Write ${path}? [Y/n] y`,
          `Wrote ${path}.`,
        ].join("\n"),
      ),
      screen,
    );
    assert.match(screen, /\n {5}cloudflared tunnel route dns mcp mcp\.example\.com\n/);
    assert.match(screen, /\n5\. In ChatGPT, first turn on Developer mode /);

    const config = parse(await Deno.readTextFile(path), path, { GITHUB_CLIENT_SECRET: "s" });
    assert.equal(config.network.trustedProxies, "cloudflare");
    assert.equal(config.auth?.github.clientId, "Ov23liAskedAbCdEf123");
    assert.deepEqual(config.auth?.allow.logins, ["octocat"]);
    assert.deepEqual(config.auth?.allow.ids, [42]);
    assert.deepEqual(config.servers[0].args, ["-y", "@scope/server one", "/srv"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("init on a terminal: flags answer their questions, --yes takes defaults, no and Ctrl-D write nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-init-" });
  try {
    // --public-url answers its question and tells the tunnel (*.ts.net); --yes takes the
    // defaults (tunnel, variable, no arguments) and writes without a summary or confirmation.
    const partial = await initOnScreen(
      dir,
      ["--public-url", "https://pi.tail1234.ts.net", "--yes", "--config", "two.json"],
      [
        [Q.clientId, "Ov23liPartialAbCd012"],
        [Q.users, "alice"],
        [Q.server, "mem"],
        [Q.command, "uvx"],
      ],
    );
    assert.equal(partial.code, 0, partial.stdout);
    assert.ok(!partial.stdout.includes("Summary:"), partial.stdout);
    const two = parse(await Deno.readTextFile(`${dir}/two.json`), `${dir}/two.json`, {
      GITHUB_CLIENT_SECRET: "s",
    });
    assert.equal(two.network.trustedProxies, "tailscale");
    assert.deepEqual(two.servers.map((s) => [s.name, s.command, s.args]), [["mem", "uvx", []]]);

    // The required flags given: the question with a default, then the summary's confirmation;
    // "n" writes nothing, exit 1.
    const declined = await initOnScreen(dir, [...FLAGS, "--config", "three.json"], [
      [Q.secretEnv, ""],
      [`Write ${dir}/three.json? [Y/n]`, "n"],
    ]);
    assert.equal(declined.code, 1, declined.stdout);
    assert.match(declined.stdout, /\nSummary:\n {2}tunnel {13}Tailscale Funnel /);
    assert.match(declined.stdout, /\nNothing written\.\n$/);

    // The end of input (Ctrl-D) at the first question writes nothing, exit 2.
    const ended = await initOnTerminal(dir, ["--config", "four.json"], [[Q.tunnel, null]]);
    assert.equal(ended.code, 2, ended.stdout);
    assert.match(ended.stdout, /error: no answer; nothing written\.\n$/);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["two.json"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
