/** `init`'s questions on a terminal (lib/cli/init-prompts.ts), answered by a script. */
import assert from "node:assert/strict";
import { askMissing, ATTEMPTS, PROMPTS } from "../../lib/cli/init-prompts.ts";
import type { Field, Given } from "../../lib/cli/init-answers.ts";
import { scriptedIo } from "../helpers/io.ts";

const ask = (given: Given, replies: (string | null)[], yes = false) => {
  const t = scriptedIo("/home/pi", { replies });
  const answers = askMissing(given, { io: t.io, target: "/home/pi/config.json", yes });
  return { ...t, answers };
};

const CLIENT_ID = "Ov23liAbCdEfGh123456";

Deno.test("the table asks every answer but listen once, the tunnel first", () => {
  const fields = PROMPTS.map((p) => p.field);
  assert.equal(fields[0], "tunnel");
  assert.equal(new Set(fields).size, fields.length);
  const all: Field[] = [
    "tunnel",
    "publicUrl",
    "clientId",
    "secretEnv",
    "users",
    "server",
    "command",
    "args",
    "githubUrl",
  ];
  assert.deepEqual([...fields].sort(), all.sort());
});

Deno.test("answers typed in order make the answers; defaults in brackets, help before", () => {
  const { answers, asked, out } = ask({}, [
    "3",
    "https://mcp.example.ngrok-free.app/",
    CLIENT_ID,
    "",
    "alice, 12345",
    "files",
    "npx",
    `-y "@modelcontextprotocol/server-filesystem" '/tmp/a b'`,
  ]);
  assert.deepEqual(answers, {
    tunnel: "ngrok",
    publicUrl: "https://mcp.example.ngrok-free.app/",
    clientId: CLIENT_ID,
    secretEnv: "GITHUB_CLIENT_SECRET",
    users: ["alice", "12345"],
    server: "files",
    command: "npx",
    args: ["-y", "@modelcontextprotocol/server-filesystem", "/tmp/a b"],
    listen: "127.0.0.1:8080",
  });
  // GitHub Enterprise Server is asked only for --github-url.
  assert.equal(asked.length, 8);
  assert.equal(asked[0], "Tunnel (1-4 or its name) [tailscale]:");
  assert.equal(
    asked[3],
    "Environment variable that will hold its client secret [GITHUB_CLIENT_SECRET]:",
  );
  // An empty default is not shown.
  assert.equal(asked[7], PROMPTS.find((p) => p.field === "args")!.question);
  // The OAuth App settings come before the client id, with the canonical public URL.
  assert.ok(
    out.includes("  Homepage URL                https://mcp.example.ngrok-free.app"),
    out.join("\n"),
  );
});

Deno.test("a valid option skips its question; a wrong one is named and asked", () => {
  const { answers, asked, err } = ask(
    {
      tunnel: "tailscale",
      publicUrl: "https://pi.tail1234.ts.net",
      clientId: "not-a-client-id",
      users: ["octocat"],
      server: "files",
      command: "npx",
      // An empty list is as good as no option: the arguments are asked.
      args: [],
      listen: "127.0.0.1:9000",
    },
    [CLIENT_ID, "", ""],
  );
  assert.deepEqual(asked, [
    "GitHub OAuth App Client ID:",
    "Environment variable that will hold its client secret [GITHUB_CLIENT_SECRET]:",
    PROMPTS.find((p) => p.field === "args")!.question,
  ]);
  assert.match(err[0], /^--github-client-id: "not-a-client-id" is not a GitHub Client ID/);
  assert.equal(typeof answers === "object" && answers.listen, "127.0.0.1:9000");
});

Deno.test("--yes takes the defaults without asking", () => {
  const { answers, asked } = ask(
    {
      publicUrl: "https://mcp.example.com",
      clientId: CLIENT_ID,
      users: ["octocat"],
      server: "files",
      command: "uvx",
    },
    [],
    true,
  );
  assert.deepEqual(asked, []);
  assert.ok(typeof answers === "object");
  // With a public URL given, the default tunnel is none/other.
  assert.equal(answers.tunnel, "none");
  assert.equal(answers.secretEnv, "GITHUB_CLIENT_SECRET");
  assert.deepEqual(answers.args, []);
});

Deno.test("wrong answers are explained and asked again, five times at most", () => {
  const wrong = ask({ tunnel: "none" }, ["", "http://", "ftp://x", "x", "y"]);
  assert.equal(wrong.answers, 2);
  assert.equal(wrong.asked.length, ATTEMPTS);
  assert.equal(wrong.err[0], "  An answer is needed.");
  assert.equal(wrong.err.length, ATTEMPTS + 1);
  assert.equal(wrong.err.at(-1), "error: no answer; nothing written.");
  const unclosed = ask(
    {
      tunnel: "none",
      publicUrl: "https://mcp.example.com",
      clientId: CLIENT_ID,
      secretEnv: "S",
      users: ["octocat"],
      server: "files",
      command: "npx",
    },
    [`"open`, "-y pkg"],
  );
  assert.deepEqual(unclosed.err, ["  a quote is not closed"]);
  assert.ok(typeof unclosed.answers === "object");
  assert.deepEqual(unclosed.answers.args, ["-y", "pkg"]);
});

Deno.test("the end of input ends init with exit code 2", () => {
  const { answers, err } = ask({}, [null]);
  assert.equal(answers, 2);
  assert.deepEqual(err, ["error: no answer; nothing written."]);
  const badListen = ask({ tunnel: "none", listen: "nowhere" }, [
    "https://mcp.example.com",
    CLIENT_ID,
    "",
    "octocat",
    "files",
    "npx",
    "",
  ]);
  assert.equal(badListen.answers, 2);
  assert.match(badListen.err[0], /^error: --listen: /);
});
