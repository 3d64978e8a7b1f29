/**
 * `main.ts init`: the setup wizard. Takes (or, on a terminal, asks for) the tunnel, the public
 * URL, the GitHub OAuth App's client id, the variable holding its secret, the allowed GitHub user
 * and one server; shows a summary; writes a commented starter config (never over an existing
 * file) after running it through the real config parser; then prints the GitHub OAuth App
 * settings to enter, the tunnel's commands and the URLs to paste into ChatGPT and Claude.
 */
import { absolutePath } from "../config/paths.ts";
import { type Io, notCapable } from "./common.ts";
import {
  canonicalPublicUrl,
  DEFAULT_LISTEN,
  DEFAULT_SECRET_ENV,
  type Field,
  FLAG,
  type Given,
  type InitAnswers,
  placeholderAnswers,
  splitList,
  splitWords,
} from "./init-answers.ts";
import { describe, fieldProblem, validate } from "./init-config.ts";
import { appSettings, printNextSteps, summary } from "./init-output.ts";
import {
  guessTunnel,
  parseTunnel,
  type Tunnel,
  TUNNEL_CHOICES,
  tunnelMenu,
  TUNNELS,
} from "./init-tunnels.ts";
import { INIT_SYNTAX, parseCommandLine } from "./options.ts";

export const INIT_USAGE = `Usage: main.ts init [options]

Writes a commented starter config for login with GitHub and prints the GitHub OAuth App
settings. Asks for what the options do not give when stdin is a terminal; otherwise the
required options must all be given. On a terminal it shows a summary and asks before writing.
Never overwrites a file.

Options:
  -c, --config FILE             where to write (default ./config.json)
      --tunnel NAME             tailscale, cloudflare, ngrok or none: sets
                                network.trustedProxies (default: the tunnel whose
                                domain the public URL is on, e.g. *.ts.net, else
                                asked, or none without a terminal)
      --public-url URL          the https address your tunnel gives you (required)
      --github-client-id ID     the GitHub OAuth App's client ID, 20 characters (required)
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

/** Runs `init`; returns the exit code. */
export async function runInit(args: string[], io: Io): Promise<number> {
  let values;
  try {
    ({ values } = parseCommandLine(args, INIT_SYNTAX));
  } catch (error) {
    io.err(`error: ${(error as Error).message}\n\n${INIT_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(INIT_USAGE);
    return 0;
  }
  const target = absolutePath(io.cwd, values.config ?? "./config.json");
  const refused = await refuseTarget(target, io);
  if (refused) return refused;

  const given: Given = {
    // A public URL on a tunnel's own domain (*.ts.net) tells the tunnel.
    tunnel: values.tunnel === undefined
      ? guessTunnel(values["public-url"])
      : canonicalTunnel(values.tunnel),
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
    for (const line of summary(answers, config)) io.out(line);
    io.out("");
    const sure = io.ask(`Write ${target}? [Y/n]`);
    if (sure === null || /^n/i.test(sure.trim())) {
      io.err("Nothing written.");
      return 1;
    }
  }
  const written = await writeNew(target, text, io);
  if (written !== 0) return written;
  printNextSteps(io, answers, config, target);
  return 0;
}

/** Exit code 2 with the reason when `target` may not be written (something there, no flags). */
async function refuseTarget(target: string, io: Io): Promise<number | undefined> {
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
  return undefined;
}

/** Creates `target` with `text`, only if nothing is there; the exit code. */
async function writeNew(target: string, text: string, io: Io): Promise<number> {
  try {
    // createNew: the file is created only if nothing is there, atomically.
    await Deno.writeTextFile(target, text, { createNew: true });
    return 0;
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

/** "Tailscale", "2" → "tailscale"; anything else is kept, for its check to name. */
function canonicalTunnel(text: string): string {
  const tunnel = parseTunnel(text);
  return typeof tunnel === "string" ? tunnel : text;
}

/** Without a terminal: every required value must come from a flag. */
function fromFlags(given: Given, io: Io): InitAnswers | 2 {
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
  const tunnel = (given.tunnel as string | undefined) ?? "none";
  const problem = fieldProblem("tunnel", tunnel as Tunnel);
  if (problem) {
    io.err(`error: --tunnel: ${problem}`);
    return 2;
  }
  return {
    tunnel: tunnel as Tunnel,
    publicUrl: given.publicUrl as string,
    clientId: given.clientId as string,
    secretEnv: (given.secretEnv as string | undefined) ?? DEFAULT_SECRET_ENV,
    users: given.users as string[],
    server: given.server as string,
    command: given.command as string,
    args: (given.args as string[] | undefined) ?? [],
    listen: (given.listen as string | undefined) ?? DEFAULT_LISTEN,
    githubUrl: given.githubUrl as string | undefined,
  };
}

interface SettleOptions<T> {
  parse?: (text: string) => T | { problem: string };
  fallback?: T;
  help?: () => string[];
}

/** Asks on a terminal for each value no flag gave (or a flag gave wrong), checking each answer. */
class Questions {
  readonly answers: InitAnswers = placeholderAnswers();

  constructor(private io: Io, private given: Given, private yes: boolean) {}

  /**
   * Takes the option's value if it is valid, the default with --yes, else asks until an answer
   * is valid (five tries). False when the input ended.
   */
  settle<F extends Field>(
    field: F,
    question: string,
    options: SettleOptions<InitAnswers[F]> = {},
  ): boolean {
    const { io } = this;
    const { fallback } = options;
    const flag = this.given[field] as InitAnswers[F] | undefined;
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
      const problem = fieldProblem(field, flag);
      if (!problem) return this.#set(field, flag);
      io.err(`${FLAG[field].split(" ")[0]}: ${problem}`);
    } else if (fallback !== undefined && this.yes) return this.#set(field, fallback);
    for (const line of options.help?.() ?? []) io.out(line);
    // A default is shown in brackets (an empty one is not shown).
    const shown = fallback === undefined || (Array.isArray(fallback) && fallback.length === 0)
      ? question
      : `${question} [${Array.isArray(fallback) ? fallback.join(" ") : fallback}]:`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const reply = io.ask(shown);
      if (reply === null) return false;
      const text = reply.trim();
      if (text === "" && fallback !== undefined) return this.#set(field, fallback);
      if (text === "") {
        io.err("  An answer is needed.");
        continue;
      }
      const value = options.parse ? options.parse(text) : text as InitAnswers[F];
      const problem = isProblem(value) ? value.problem : fieldProblem(field, value);
      if (!problem) return this.#set(field, value as InitAnswers[F]);
      io.err(`  ${problem}`);
    }
    return false;
  }

  #set<F extends Field>(field: F, value: InitAnswers[F]): true {
    this.answers[field] = value;
    return true;
  }
}

/** On a terminal: the eight questions, each skipped when its option gave a valid value. */
function askMissing(
  given: Given,
  options: { io: Io; target: string; yes: boolean },
): InitAnswers | 2 {
  const { io } = options;
  const q = new Questions(io, given, options.yes);
  const a = q.answers;
  io.out(`mcp-oauth-proxy init: writes ${options.target} (an existing file is never replaced).`);
  io.out("");
  const ok = q.settle("tunnel", `Tunnel (1-${TUNNEL_CHOICES.length} or its name)`, {
    parse: parseTunnel,
    // Tailscale Funnel, the simplest; none/other when the public URL is some other host.
    fallback: given.publicUrl === undefined ? "tailscale" : "none",
    help: tunnelMenu,
  }) &&
    q.settle("publicUrl", "Public URL:", { help: () => ["", ...TUNNELS[a.tunnel].urlHelp] }) &&
    (given.githubUrl === undefined || q.settle("githubUrl", "GitHub Enterprise Server URL:")) &&
    q.settle("clientId", "GitHub OAuth App Client ID:", {
      help: () => [
        "",
        ...appSettings({ ...a, publicUrl: canonicalPublicUrl(a.publicUrl) }),
        "Then copy its Client ID here (20 characters, e.g. Ov23liAbCdEfGh123456).",
      ],
    }) &&
    q.settle("secretEnv", "Environment variable that will hold its client secret", {
      fallback: DEFAULT_SECRET_ENV,
      help: () => ["", "The client secret never goes into the config file, only the environment."],
    }) &&
    q.settle(
      "users",
      "GitHub user allowed to sign in (login or numeric id; several: separate with commas):",
      { parse: splitList, help: () => [""] },
    ) &&
    q.settle("server", "Server name (lower-case; its URL ends in /mcp/<name>), e.g. files:", {
      help: () => ["", "One stdio MCP server to start with (add more to mcpServers later)."],
    }) &&
    q.settle("command", "Command that starts it (e.g. npx, uvx, node):") &&
    q.settle(
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
    const problem = fieldProblem("listen", given.listen as string);
    if (problem) {
      io.err(`error: --listen: ${problem}`);
      return 2;
    }
    a.listen = given.listen as string;
  }
  io.out("");
  return a;
}

function isProblem(value: unknown): value is { problem: string } {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    "problem" in value;
}
