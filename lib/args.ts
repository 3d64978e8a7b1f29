/**
 * A small strict command-line parser for `main.ts serve` and `permissions`: long and short
 * options, `--opt value` and `--opt=value`, positionals, and `--` to end options. It mirrors
 * `node:util` `parseArgs` (same error messages) without loading Node compatibility into the
 * long-running proxy, which costs several megabytes of memory.
 */

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
}

/** The parsed values, typed from the option specs. */
export type Values<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]["type"] extends "string" ? string : boolean;
};

/** Parses `args` against `options`; throws TypeError with a readable message on a mistake. */
export function parseArgs<const O extends Record<string, OptionSpec>>(
  args: string[],
  options: O,
): { values: Values<O>; positionals: string[] } {
  const values: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const byShort = new Map(
    Object.entries(options).flatMap(([name, o]) => (o.short ? [[o.short, name]] : [])),
  );
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
      if (!(name in options)) throw new TypeError(`Unknown option '--${name}'`);
    } else if (arg.startsWith("-") && arg.length > 1) {
      name = byShort.get(arg.slice(1, 2));
      if (!name || arg.length > 2) throw new TypeError(`Unknown option '${arg}'`);
    } else {
      positionals.push(arg);
      continue;
    }
    const spec = options[name];
    if (spec.type === "boolean") {
      if (inline !== undefined) throw new TypeError(`Option '--${name}' does not take an argument`);
      values[name] = true;
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined || (inline === undefined && value.startsWith("-"))) {
      throw new TypeError(`Option '--${name} <value>' argument missing`);
    }
    values[name] = value;
  }
  return { values: values as Values<O>, positionals };
}
