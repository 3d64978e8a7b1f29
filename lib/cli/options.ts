/**
 * The command-line options of every command, in one place. The commands parse their arguments
 * with these tables (lib/args.ts), and the task launcher reads `--config`, `--listen` and
 * `--help` with the same ones (task-plan.ts), so the two never read a command line differently.
 * The usage texts that explain them are beside each command.
 */
import { type OptionSpec, parseArgs, type ParseRules, type Values } from "../args.ts";

/** The setup and owner commands, each with its own options (run.ts runs them). */
export const CLI_COMMANDS = ["init", "check", "clients", "grants"] as const;
/** One of `CLI_COMMANDS`. */
export type CliCommand = typeof CLI_COMMANDS[number];

/** Whether `word` names a setup or owner command. */
export function isCliCommand(word: string | undefined): word is CliCommand {
  return CLI_COMMANDS.includes(word as CliCommand);
}

/** A command's options and what else it accepts. */
export interface Syntax<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  options: O;
  rules: ParseRules;
}

/** `main.ts [serve]` and `main.ts permissions`: the command word, then options. */
export const SERVE_SYNTAX = {
  options: {
    config: { type: "string", short: "c" },
    listen: { type: "string", short: "l" },
    "no-auth": { type: "boolean" },
    release: { type: "boolean" },
    help: { type: "boolean", short: "h" },
    version: { type: "boolean", short: "V" },
  },
  rules: {},
} as const satisfies Syntax;

/** `main.ts init`: options only. */
export const INIT_SYNTAX = {
  options: {
    config: { type: "string", short: "c" },
    tunnel: { type: "string" },
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
  rules: { positionals: false },
} as const satisfies Syntax;

/** `main.ts check`: options only. */
export const CHECK_SYNTAX = {
  options: {
    config: { type: "string", short: "c" },
    listen: { type: "string", short: "l" },
    "print-flags": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
  rules: { positionals: false },
} as const satisfies Syntax;

const OWNER_OPTIONS = {
  config: { type: "string", short: "c" },
  "print-flags": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies Record<string, OptionSpec>;

/**
 * `main.ts clients list|revoke ID`. Ids are random and may start with `-`: a word is an option
 * only if it is shaped like one (`-x`, `--name`), and `--` ends the options.
 */
export const CLIENTS_SYNTAX = {
  options: OWNER_OPTIONS,
  rules: { dashedPositionals: true },
} as const satisfies Syntax;

/** `main.ts grants list|revoke [ID]`: as `clients`, plus `--user` and `--all`. */
export const GRANTS_SYNTAX = {
  options: {
    ...OWNER_OPTIONS,
    user: { type: "string" },
    all: { type: "boolean" },
  },
  rules: { dashedPositionals: true },
} as const satisfies Syntax;

/** `deno task compile[:TARGET]` (the launcher's own command, task-plan.ts): options only. */
export const COMPILE_SYNTAX = {
  options: {
    config: { type: "string", short: "c" },
    "installed-config": { type: "string" },
    listen: { type: "string", short: "l" },
    help: { type: "boolean", short: "h" },
  },
  rules: { positionals: false },
} as const satisfies Syntax;

/** Parses `args` with a command's syntax; throws `FlagError` on a mistake (lib/args.ts). */
export function parseCommandLine<const O extends Record<string, OptionSpec>>(
  args: string[],
  syntax: Syntax<O>,
): { values: Values<O>; positionals: string[] } {
  return parseArgs(args, syntax.options, syntax.rules);
}
