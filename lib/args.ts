/**
 * The one command-line parser of `main.ts` and its commands (`serve`, `permissions`, `init`,
 * `check`, `clients`, `grants`) and of the task launcher, which must read the options exactly as
 * the command will. It follows the POSIX utility argument syntax
 * (https://pubs.opengroup.org/onlinepubs/9799919799/basedefs/V1_chap12.html) as `node:util`
 * `parseArgs` does in strict mode: long options `--name` and `--name=value`, short options `-c`,
 * grouped `-hy` and with their value attached `-cFILE`, a value in the next word, options
 * anywhere, and `--` to end them. Its messages word mistakes as node's do. It does not load Node
 * compatibility, which adds about 5 MB of resident memory to the long-running proxy (measured
 * with Deno 2.9: importing `node:util` after the proxy's own modules).
 */

/** One option: a string that takes a value, or a boolean switch. */
export interface OptionSpec {
  type: "string" | "boolean";
  /** The one-letter alias, without the dash. */
  short?: string;
  /** May be given more than once (strings only): every value, in order. */
  multiple?: boolean;
}

/** What a command accepts besides its options. */
export interface ParseRules {
  /** Whether words that are not options are accepted (default true). */
  positionals?: boolean;
  /**
   * Whether a word that starts with `-` but is not shaped like an option (`-x`, `--name`,
   * `--name=value`) is a positional, for ids that may start with a dash (default false: any
   * word that starts with `-` is an option). The same shape then decides whether the word after
   * a string option is its value or a forgotten value.
   */
  dashedPositionals?: boolean;
}

type ValueOf<S extends OptionSpec> = S["type"] extends "string"
  ? (S extends { multiple: true } ? string[] : string)
  : boolean;

/** The parsed values, typed from the option specs. */
export type Values<O extends Record<string, OptionSpec>> = { [K in keyof O]?: ValueOf<O[K]> };

/** What the parser found wrong, for a command that words some mistakes its own way. */
export type FlagMistake = "unknown" | "missing" | "unexpected" | "no-argument";

/** A mistake in the command line: a `TypeError` with a message that names the word. */
export class FlagError extends TypeError {
  constructor(
    message: string,
    /** What kind of mistake. */
    readonly mistake: FlagMistake,
    /** The option or word as written (`--config`, `-c`, `extra`). */
    readonly word: string,
  ) {
    super(message);
  }
}

const OPTION_SHAPE = /^(?:-[A-Za-z]|--[a-z][a-z-]{0,19}(?:=.*)?)$/;

/**
 * Parses `args` against `options` and `rules`; throws `FlagError` naming the word on a mistake:
 * an unknown option, a string option without its value (or followed by what looks like another
 * option), a value given to a boolean, or a word where the command takes none.
 */
export function parseArgs<const O extends Record<string, OptionSpec>>(
  args: string[],
  options: O,
  rules: ParseRules = {},
): { values: Values<O>; positionals: string[] } {
  const parser = new Parser(options, rules);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      args.slice(i + 1).forEach((word) => parser.positional(word));
      break;
    }
    if (parser.looksLikeOption(arg)) i += parser.option(arg, args[i + 1]);
    else parser.positional(arg);
  }
  return { values: parser.values as Values<O>, positionals: parser.positionals };
}

/** The state of one parse. */
class Parser {
  readonly values: Record<string, string | boolean | string[]> = {};
  readonly positionals: string[] = [];
  readonly #byShort: Map<string, string>;

  constructor(readonly options: Record<string, OptionSpec>, readonly rules: ParseRules) {
    this.#byShort = new Map(
      Object.entries(options).flatMap(([name, o]) => (o.short ? [[o.short, name]] : [])),
    );
  }

  looksLikeOption(word: string): boolean {
    return this.rules.dashedPositionals
      ? OPTION_SHAPE.test(word)
      : word.length > 1 && word.startsWith("-");
  }

  positional(word: string): void {
    if (this.rules.positionals === false) {
      throw new FlagError(
        `Unexpected argument '${word}'. This command does not take positional arguments`,
        "unexpected",
        word,
      );
    }
    this.positionals.push(word);
  }

  /** Takes the option(s) of `arg`; returns 1 when `next` was its value, else 0. */
  option(arg: string, next: string | undefined): number {
    // Each option's name and the value written into the same word, if any.
    const named = arg.startsWith("--") ? [splitLong(arg)] : this.#shorts(arg.slice(1));
    for (const [name, inline] of named) {
      const spec = Object.hasOwn(this.options, name) ? this.options[name] : undefined;
      if (!spec) {
        throw new FlagError(`Unknown option '${optionWord(name)}'`, "unknown", optionWord(name));
      }
      if (spec.type === "boolean") {
        if (inline !== undefined) {
          const message = `Option '--${name}' does not take an argument`;
          throw new FlagError(message, "no-argument", `--${name}`);
        }
        this.#set(name, true);
      } else if (inline !== undefined) this.#set(name, inline);
      else {
        // Only the last option of a word can take the next word (a string ends a short group).
        this.#set(name, this.#valueIn(next, name, named.length === 1 ? arg : `--${name}`));
        return 1;
      }
    }
    return 0;
  }

  #valueIn(next: string | undefined, name: string, written: string): string {
    const missing = `Option '--${name} <value>' argument missing`;
    if (next === undefined) throw new FlagError(missing, "missing", written);
    if (this.looksLikeOption(next)) {
      throw new FlagError(
        `${missing}: '${next}' looks like an option (a value that starts with a dash is ` +
          `written --${name}=${next})`,
        "missing",
        written,
      );
    }
    return next;
  }

  #set(name: string, value: string | true): void {
    if (!this.options[name].multiple) this.values[name] = value;
    else ((this.values[name] ??= []) as string[]).push(value as string);
  }

  /**
   * The options of one short word: `-hy` is `-h -y`; a string option takes the rest of the word
   * as its value (`-cFILE`), or the next word when it ends the group. An unknown letter is kept
   * as `-x` (no such option) for the caller to report.
   */
  #shorts(letters: string): [string, string | undefined][] {
    const out: [string, string | undefined][] = [];
    for (let j = 0; j < letters.length; j++) {
      const name = this.#byShort.get(letters[j]);
      if (name === undefined) return [...out, [`-${letters[j]}`, undefined]];
      if (this.options[name].type === "string") {
        const rest = letters.slice(j + 1);
        return [...out, [name, rest === "" ? undefined : rest]];
      }
      out.push([name, undefined]);
    }
    return out;
  }
}

/** `--name=value` → ["name", "value"]; `--name` → ["name", undefined]. */
function splitLong(arg: string): [string, string | undefined] {
  const eq = arg.indexOf("=");
  return eq === -1 ? [arg.slice(2), undefined] : [arg.slice(2, eq), arg.slice(eq + 1)];
}

/** How an unknown option is named in the message: `--name`, or `-x` for a short one. */
function optionWord(name: string): string {
  return name.startsWith("-") ? name : `--${name}`;
}
