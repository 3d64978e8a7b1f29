/**
 * `main.ts init`: the setup wizard. Takes (or, on a terminal, asks for) the public URL, the GitHub
 * OAuth App's client id, the variable holding its secret, the allowed GitHub user and one server;
 * writes a commented starter config (never over an existing file) after running it through the
 * real config parser; then prints the GitHub OAuth App settings to enter and the URLs to paste
 * into ChatGPT and Claude.
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../config/check.ts";
import { parseConfigText } from "../config/load.ts";
import { absolutePath } from "../config/paths.ts";
import type { Config } from "../config/schema.ts";
import { type Io, notCapable } from "./common.ts";
import { appSettings, printNextSteps, renderConfig } from "./init-output.ts";

export const INIT_USAGE = `Usage: main.ts init [options]

Writes a commented starter config for login with GitHub and prints the GitHub OAuth App
settings. Asks for what the options do not give when stdin is a terminal; otherwise the
required options must all be given. Never overwrites a file.

Options:
  -c, --config FILE             where to write (default ./config.json)
      --public-url URL          the https address your tunnel gives you (required)
      --github-client-id ID     the GitHub OAuth App's client ID (required)
      --github-secret-env VAR   the variable holding its client secret
                                (default GITHUB_CLIENT_SECRET)
      --github-url URL          GitHub Enterprise Server, e.g. https://github.example.com
      --allow-user LOGIN_OR_ID  a GitHub user allowed to sign in (required; repeatable)
      --server NAME             the server's name: its URL ends in /mcp/NAME (required)
      --command CMD             the command that starts it, e.g. npx (required)
      --arg A                   one argument of the command (repeatable; write --arg=-y for
                                a value that starts with a dash)
      --listen HOST:PORT        where the proxy listens (default 127.0.0.1:8080)
  -y, --yes                     ask nothing that has a default, and write without confirming
  -h, --help                    show this help

Deno flags: --allow-read and --allow-write of the file to write
("deno task init" grants exactly that file).`;

const DEFAULT_SECRET_ENV = "GITHUB_CLIENT_SECRET";
const DEFAULT_LISTEN = "127.0.0.1:8080";
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Everything the starter config is made of. */
export interface InitAnswers {
  publicUrl: string;
  clientId: string;
  secretEnv: string;
  users: string[];
  server: string;
  command: string;
  args: string[];
  listen: string;
  /** GitHub Enterprise Server web URL; undefined for github.com. */
  githubUrl?: string;
}

type Field = keyof InitAnswers;

/** The option that sets each field, for messages. */
const FLAG: Record<Field, string> = {
  publicUrl: "--public-url URL",
  clientId: "--github-client-id ID",
  secretEnv: "--github-secret-env VAR",
  users: "--allow-user LOGIN_OR_ID",
  server: "--server NAME",
  command: "--command CMD",
  args: "--arg A",
  listen: "--listen HOST:PORT",
  githubUrl: "--github-url URL",
};

/** Stand-ins for the fields not being checked, so one field can be validated on its own. */
const PLACEHOLDER: InitAnswers = {
  publicUrl: "https://example.com",
  clientId: "placeholder",
  secretEnv: DEFAULT_SECRET_ENV,
  users: ["octocat"],
  server: "files",
  command: "npx",
  args: [],
  listen: DEFAULT_LISTEN,
};

/** Runs `init`; returns the exit code. */
export async function runInit(args: string[], io: Io): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string", short: "c" },
        "public-url": { type: "string" },
        "github-client-id": { type: "string" },
        "github-secret-env": { type: "string" },
        "github-url": { type: "string" },
        "allow-user": { type: "string", multiple: true },
        server: { type: "string" },
        command: { type: "string" },
        arg: { type: "string", multiple: true },
        listen: { type: "string" },
        yes: { type: "boolean", short: "y" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    io.err(`error: ${(error as Error).message}\n\n${INIT_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(INIT_USAGE);
    return 0;
  }
  const target = absolutePath(io.cwd, values.config ?? "./config.json");
  const exists = await existing(target);
  if (exists === "capable") {
    io.err(
      `error: init may not look at ${target}: run it as "deno run --allow-read=${target} ` +
        `--allow-write=${target} main.ts init …", or use "deno task init", which grants exactly that`,
    );
    return 2;
  }
  if (exists) {
    io.err(
      `error: ${target} already exists; init never overwrites a file. ` +
        `Check it with "deno task check-config", or pass --config NEW_FILE to write another one.`,
    );
    return 2;
  }

  const given: Partial<Record<Field, string | string[]>> = {
    publicUrl: values["public-url"],
    clientId: values["github-client-id"],
    secretEnv: values["github-secret-env"],
    users: values["allow-user"]?.flatMap(splitList),
    server: values.server,
    command: values.command,
    args: values.arg,
    listen: values.listen,
    githubUrl: values["github-url"],
  };
  const answers = io.interactive
    ? askMissing(given, { io, target, yes: values.yes ?? false })
    : fromFlags(given, io);
  if (typeof answers === "number") return answers;

  // What is written is exactly what was validated.
  const checked = validate(answers, target);
  if ("problems" in checked) {
    io.err(`error: these values do not make a valid config:\n  ${describe(checked.problems)}`);
    return 2;
  }
  const { text, config } = checked;
  if (io.interactive && !values.yes) {
    const sure = io.ask(`Write ${target}? [Y/n]`);
    if (sure === null || /^n/i.test(sure.trim())) {
      io.err("Nothing written.");
      return 1;
    }
  }
  try {
    // createNew: the file is created only if nothing is there, atomically.
    await Deno.writeTextFile(target, text, { createNew: true });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      io.err(`error: ${target} appeared meanwhile; init never overwrites a file. Nothing written.`);
      return 2;
    }
    if (notCapable(error)) {
      io.err(
        `error: init may not write ${target}: run it as "deno run --allow-read=${target} ` +
          `--allow-write=${target} main.ts init …", or use "deno task init", which grants exactly ` +
          `that`,
      );
      return 2;
    }
    const why = error instanceof Deno.errors.NotFound
      ? "its folder does not exist"
      : (error as Error).message;
    io.err(`error: cannot write ${target}: ${why}`);
    return 1;
  }
  printNextSteps(io, answers, config, target);
  return 0;
}

/** Whether something is at `path`; "capable" when the permission flags do not allow looking. */
async function existing(path: string): Promise<boolean | "capable"> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    if (notCapable(error)) return "capable";
    // Something is in the way (a file where a folder was expected, no access): writing will say.
    return false;
  }
}

/** Without a terminal: every required value must come from a flag. */
function fromFlags(given: Partial<Record<Field, string | string[]>>, io: Io): InitAnswers | 2 {
  const required: Field[] = ["publicUrl", "clientId", "users", "server", "command"];
  const missing = required.filter((f) => given[f] === undefined || given[f]!.length === 0);
  if (missing.length) {
    io.err(
      `error: init needs ${
        missing.length === 1 ? "a value" : "values"
      } that no option gave, and stdin is not a terminal to ask. Pass:\n  ${
        missing.map((f) => FLAG[f]).join("\n  ")
      }\n\n${INIT_USAGE}`,
    );
    return 2;
  }
  const secretEnv = (given.secretEnv as string | undefined) ?? DEFAULT_SECRET_ENV;
  if (!ENV_NAME.test(secretEnv)) {
    io.err(`error: --github-secret-env: ${envNameProblem(secretEnv)}`);
    return 2;
  }
  return {
    publicUrl: given.publicUrl as string,
    clientId: given.clientId as string,
    secretEnv,
    users: given.users as string[],
    server: given.server as string,
    command: given.command as string,
    args: (given.args as string[] | undefined) ?? [],
    listen: (given.listen as string | undefined) ?? DEFAULT_LISTEN,
    githubUrl: given.githubUrl as string | undefined,
  };
}

/** On a terminal: asks for each value no flag gave (or a flag gave wrong), checking each answer. */
function askMissing(
  given: Partial<Record<Field, string | string[]>>,
  options: { io: Io; target: string; yes: boolean },
): InitAnswers | 2 {
  const { io, yes } = options;
  const answers: InitAnswers = { ...PLACEHOLDER, githubUrl: undefined };
  io.out(`mcp-oauth-proxy init: writes ${options.target} (an existing file is never replaced).`);
  io.out("");

  /**
   * Takes the option's value if it is valid, the default with --yes, else asks until an answer
   * is valid (five tries). False when the input ended.
   */
  const settle = <F extends Field>(
    field: F,
    question: string,
    options: {
      parse?: (text: string) => InitAnswers[F] | { problem: string };
      fallback?: InitAnswers[F];
      help?: () => string[];
    } = {},
  ): boolean => {
    const { fallback } = options;
    const parse = options.parse ?? ((text: string) => text as InitAnswers[F]);
    const flag = given[field] as InitAnswers[F] | undefined;
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
      const problem = check(field, flag);
      if (!problem) {
        answers[field] = flag;
        return true;
      }
      io.err(`${FLAG[field].split(" ")[0]}: ${problem}`);
    } else if (fallback !== undefined && yes) {
      answers[field] = fallback;
      return true;
    }
    for (const line of options.help?.() ?? []) io.out(line);
    // A default is shown in brackets (an empty one is not shown).
    const shown = fallback === undefined || (Array.isArray(fallback) && fallback.length === 0)
      ? question
      : `${question} [${Array.isArray(fallback) ? fallback.join(" ") : fallback}]:`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const reply = io.ask(shown);
      if (reply === null) return false;
      const text = reply.trim();
      if (text === "" && fallback !== undefined) {
        answers[field] = fallback;
        return true;
      }
      if (text === "") {
        io.err("  An answer is needed.");
        continue;
      }
      const value = parse(text);
      const problem = isProblem(value) ? value.problem : check(field, value);
      if (!problem) {
        answers[field] = value as InitAnswers[F];
        return true;
      }
      io.err(`  ${problem}`);
    }
    return false;
  };
  const ok = settle("publicUrl", "Public URL:", {
    help: () => [
      "The public URL is the https address your tunnel gives you (docs/tunnels.md),",
      "e.g. https://pi.tail1234.ts.net for Tailscale Funnel.",
    ],
  }) &&
    (given.githubUrl === undefined || settle("githubUrl", "GitHub Enterprise Server URL:")) &&
    settle("clientId", "GitHub OAuth App Client ID:", {
      help: () => [
        "",
        ...appSettings({ ...answers, publicUrl: canonicalPublicUrl(answers.publicUrl) }),
        "Then copy its Client ID here.",
      ],
    }) &&
    settle("secretEnv", "Environment variable that will hold its client secret", {
      fallback: DEFAULT_SECRET_ENV,
      help: () => ["", "The client secret never goes into the config file, only the environment."],
    }) &&
    settle(
      "users",
      "GitHub user allowed to sign in (login or numeric id; several: separate with commas):",
      { parse: splitList, help: () => [""] },
    ) &&
    settle("server", "Server name (lower-case; its URL ends in /mcp/<name>), e.g. files:", {
      help: () => ["", "One stdio MCP server to start with (add more to mcpServers later)."],
    }) &&
    settle("command", "Command that starts it (e.g. npx, uvx, node):") &&
    settle(
      "args",
      "Its arguments, separated by spaces (quote one that contains spaces), empty for none:",
      {
        parse: (text) => splitWords(text) ?? { problem: "a quote is not closed" },
        fallback: [],
      },
    );
  if (!ok) {
    io.err("error: no answer; nothing written.");
    return 2;
  }
  if (given.listen !== undefined) {
    const problem = check("listen", given.listen as string);
    if (problem) {
      io.err(`error: --listen: ${problem}`);
      return 2;
    }
    answers.listen = given.listen as string;
  }
  io.out("");
  return answers;
}

function isProblem(value: unknown): value is { problem: string } {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    "problem" in value;
}

/** The problem with one field's value, checked by the real parser (others are placeholders). */
function check<F extends Field>(field: F, value: InitAnswers[F]): string | undefined {
  if (field === "secretEnv") {
    return ENV_NAME.test(value as string) ? undefined : envNameProblem(value as string);
  }
  const candidate = { ...PLACEHOLDER, [field]: value };
  const result = validate(candidate, "/config.json");
  return "problems" in result ? result.problems.join("; ") : undefined;
}

function envNameProblem(name: string): string {
  return `"${name}" is not a variable name (letters, digits and _, not starting with a digit)`;
}

/** Renders the starter config and parses it with the real parser, as `serve` would. */
function validate(
  answers: InitAnswers,
  target: string,
): { text: string; config: Config } | { problems: string[] } {
  const parse = (text: string) =>
    parseConfigText(text, {
      source: target,
      // The secret is set only when the proxy starts: treat its variable as set.
      env: (name) => name === answers.secretEnv ? "set-when-the-proxy-starts" : undefined,
    }).config;
  try {
    let text = renderConfig(answers);
    let config = parse(text);
    // Write the canonical public URL (no trailing slash, lower-case host), as it is advertised.
    const canonical = config.auth?.publicUrl;
    if (canonical && canonical !== answers.publicUrl) {
      text = renderConfig({ ...answers, publicUrl: canonical });
      config = parse(text);
    }
    return { text, config };
  } catch (error) {
    if (error instanceof ConfigError) return { problems: error.problems };
    throw error;
  }
}

/** Adds the option that sets each key to the problems, for the non-interactive error. */
function describe(problems: string[]): string {
  const byKey: [string, Field][] = [
    ["publicUrl", "publicUrl"],
    ["github.clientId", "clientId"],
    ["github.webUrl", "githubUrl"],
    ["github.apiUrl", "githubUrl"],
    ["allow", "users"],
    ["listen", "listen"],
  ];
  return problems.map((p) => {
    let field = byKey.find(([key]) => p.startsWith(key))?.[1];
    if (!field && p.startsWith("mcpServers")) {
      field = /\.args\b/.test(p) ? "args" : /\.command\b/.test(p) ? "command" : "server";
    }
    return field ? `${p} (${FLAG[field].split(" ")[0]})` : p;
  }).join("\n  ");
}

function canonicalPublicUrl(text: string): string {
  try {
    const url = new URL(text);
    return url.origin + url.pathname.replace(/\/+$/, "");
  } catch {
    return text;
  }
}

/** "a, b c" → ["a", "b", "c"] */
function splitList(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}

/** Splits a line into words as a shell would for plain quoting; null for an unclosed quote. */
export function splitWords(line: string): string[] | null {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && (line[i + 1] === '"' || line[i + 1] === "\\")) {
        word += line[++i];
      } else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) return null;
  if (inWord) words.push(word);
  return words;
}
