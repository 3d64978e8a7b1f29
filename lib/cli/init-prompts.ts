/**
 * `init`'s questions on a terminal, as a table: one row per answer, in the order asked, each
 * skipped when its option gave a valid value. A row's answer is checked as it is typed (the real
 * config parser judges it, init-config.ts) and asked again until it is valid.
 */
import { isRecord } from "../jsonrpc.ts";
import type { Io } from "./common.ts";
import {
  canonicalPublicUrl,
  DEFAULT_SECRET_ENV,
  type Field,
  FLAG,
  type Given,
  type InitAnswers,
  placeholderAnswers,
  splitList,
  splitWords,
} from "./init-answers.ts";
import { fieldProblem } from "./init-config.ts";
import { appSettings } from "./init-output.ts";
import { parseTunnel, TUNNEL_CHOICES, tunnelMenu, TUNNELS } from "./init-tunnels.ts";

/** How many times a question is asked before `init` gives up. */
export const ATTEMPTS = 5;

/** One question: the answer it settles and how. */
export interface Prompt<F extends Field = Field> {
  field: F;
  question: string;
  /** Turns the typed text into the value (default: the text itself). */
  parse?: (text: string) => InitAnswers[F] | { problem: string };
  /** The value an empty answer (or `--yes`) takes; without one an answer is needed. */
  fallback?: (given: Given) => InitAnswers[F];
  /** Lines shown before the question, from the answers so far. */
  help?: (answers: InitAnswers) => string[];
  /** Whether the row applies at all (default: always). */
  when?: (given: Given) => boolean;
}

type AnyPrompt = { [F in Field]: Prompt<F> }[Field];

/** The questions, in the order asked. `listen` is never asked: only `--listen` sets it. */
export const PROMPTS: readonly AnyPrompt[] = [
  {
    field: "tunnel",
    question: `Tunnel (1-${TUNNEL_CHOICES.length} or its name)`,
    parse: parseTunnel,
    // Tailscale Funnel, the simplest; none/other when the public URL is some other host.
    fallback: (given) => given.publicUrl === undefined ? "tailscale" : "none",
    help: tunnelMenu,
  },
  {
    field: "publicUrl",
    question: "Public URL:",
    help: (a) => ["", ...TUNNELS[a.tunnel].urlHelp],
  },
  {
    field: "githubUrl",
    question: "GitHub Enterprise Server URL:",
    // Only --github-url asks for GitHub Enterprise Server: its value is checked here.
    when: (given) => given.githubUrl !== undefined,
  },
  {
    field: "clientId",
    question: "GitHub OAuth App Client ID:",
    help: (a) => [
      "",
      ...appSettings({ ...a, publicUrl: canonicalPublicUrl(a.publicUrl) }),
      "Then copy its Client ID here (20 characters, e.g. Ov23liAbCdEfGh123456).",
    ],
  },
  {
    field: "secretEnv",
    question: "Environment variable that will hold its client secret",
    fallback: () => DEFAULT_SECRET_ENV,
    help: () => ["", "The client secret never goes into the config file, only the environment."],
  },
  {
    field: "users",
    question:
      "GitHub user allowed to sign in (login or numeric id; several: separate with commas):",
    parse: splitList,
    help: () => [""],
  },
  {
    field: "server",
    question: "Server name (lower-case; its URL ends in /mcp/<name>), e.g. files:",
    help: () => ["", "One stdio MCP server to start with (add more to mcpServers later)."],
  },
  { field: "command", question: "Command that starts it (e.g. npx, uvx, node):" },
  {
    field: "args",
    question:
      "Its arguments, separated by spaces (quote one that contains spaces), empty for none:",
    parse: (text) => splitWords(text) ?? { problem: "a quote is not closed" },
    fallback: () => [],
  },
];

/**
 * On a terminal: asks each row of `prompts` whose option gave no valid value; exit code 2 when
 * the input ended or an answer stayed invalid.
 */
export function askMissing(
  given: Given,
  options: { io: Io; target: string; yes: boolean; prompts?: readonly AnyPrompt[] },
): InitAnswers | 2 {
  const { io } = options;
  const q = new Questions(io, given, options.yes);
  io.out(`mcp-oauth-proxy init: writes ${options.target} (an existing file is never replaced).`);
  io.out("");
  for (const prompt of options.prompts ?? PROMPTS) {
    if (prompt.when && !prompt.when(given)) continue;
    if (!q.settle(prompt)) {
      io.err("error: no answer; nothing written.");
      return 2;
    }
  }
  const a = q.answers;
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

/** Asks on a terminal for each value no flag gave (or a flag gave wrong), checking each answer. */
class Questions {
  readonly answers: InitAnswers = placeholderAnswers();

  constructor(private io: Io, private given: Given, private yes: boolean) {}

  /**
   * Takes the option's value if it is valid, the default with --yes, else asks until an answer
   * is valid (five tries). False when the input ended.
   */
  settle<F extends Field>(prompt: Prompt<F>): boolean {
    const { io } = this;
    const { field } = prompt;
    const fallback = prompt.fallback?.(this.given);
    const flag = this.given[field] as InitAnswers[F] | undefined;
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
      const problem = fieldProblem(field, flag);
      if (!problem) return this.#set(field, flag);
      io.err(`${FLAG[field].split(" ")[0]}: ${problem}`);
    } else if (fallback !== undefined && this.yes) return this.#set(field, fallback);
    for (const line of prompt.help?.(this.answers) ?? []) io.out(line);
    // A default is shown in brackets (an empty one is not shown).
    const shown = fallback === undefined || (Array.isArray(fallback) && fallback.length === 0)
      ? prompt.question
      : `${prompt.question} [${Array.isArray(fallback) ? fallback.join(" ") : fallback}]:`;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const reply = io.ask(shown);
      if (reply === null) return false;
      const text = reply.trim();
      if (text === "" && fallback !== undefined) return this.#set(field, fallback);
      if (text === "") {
        io.err("  An answer is needed.");
        continue;
      }
      const value = prompt.parse ? prompt.parse(text) : text as InitAnswers[F];
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

function isProblem(value: unknown): value is { problem: string } {
  return isRecord(value) && "problem" in value;
}
