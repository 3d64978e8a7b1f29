/** The command-line parser of main.ts and its commands: node:util parseArgs semantics, and its rules for ids that start with a dash. */
import assert from "node:assert/strict";
import { FlagError, parseArgs } from "../../lib/args.ts";

const SPEC = {
  config: { type: "string", short: "c" },
  "no-auth": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

Deno.test("options, values and positionals", () => {
  assert.deepEqual(parseArgs(["serve", "--config", "a.json", "--no-auth"], SPEC), {
    values: { config: "a.json", "no-auth": true },
    positionals: ["serve"],
  });
  assert.deepEqual(parseArgs(["-c", "b.json", "-h"], SPEC).values, {
    config: "b.json",
    help: true,
  });
  assert.deepEqual(parseArgs(["--config=c.json"], SPEC).values, { config: "c.json" });
  assert.deepEqual(parseArgs(["--", "--config"], SPEC).positionals, ["--config"]);
});

Deno.test("mistakes are errors with node's messages", () => {
  assert.throws(() => parseArgs(["--bogus"], SPEC), /^TypeError: Unknown option '--bogus'$/);
  assert.throws(() => parseArgs(["-x"], SPEC), /Unknown option '-x'/);
  assert.throws(() => parseArgs(["--config"], SPEC), /Option '--config <value>' argument missing/);
  assert.throws(() => parseArgs(["--config", "--no-auth"], SPEC), /argument missing/);
  assert.throws(() => parseArgs(["--no-auth=yes"], SPEC), /does not take an argument/);
});

const INIT_LIKE = {
  config: { type: "string", short: "c" },
  arg: { type: "string", multiple: true },
  yes: { type: "boolean", short: "y" },
  help: { type: "boolean", short: "h" },
} as const;

Deno.test("short options: grouped switches, a value attached or in the next word", () => {
  assert.deepEqual(parseArgs(["-hy"], INIT_LIKE).values, { help: true, yes: true });
  assert.deepEqual(parseArgs(["-cfile.json"], INIT_LIKE).values, { config: "file.json" });
  assert.deepEqual(parseArgs(["-yc", "f.json"], INIT_LIKE).values, { yes: true, config: "f.json" });
  assert.deepEqual(parseArgs(["-ycf.json"], INIT_LIKE).values, { yes: true, config: "f.json" });
  // A lone dash is a word (stdin, by convention), not an option.
  assert.deepEqual(parseArgs(["-"], INIT_LIKE).positionals, ["-"]);
});

Deno.test("a repeatable option keeps every value in order, empty ones included", () => {
  const { values } = parseArgs(["--arg", "a", "--arg=-y", "--arg=", "--arg", "b"], INIT_LIKE);
  assert.deepEqual(values.arg, ["a", "-y", "", "b"]);
  assert.equal(parseArgs(["--config=a", "--config=b"], INIT_LIKE).values.config, "b");
});

Deno.test("each mistake is a FlagError naming the word", () => {
  const mistake = (args: string[], rules = {}) => {
    try {
      parseArgs(args, INIT_LIKE, rules);
    } catch (error) {
      assert.ok(error instanceof FlagError && error instanceof TypeError);
      return { message: error.message, mistake: error.mistake, word: error.word };
    }
    throw new Error(`no mistake found in ${args.join(" ")}`);
  };
  assert.deepEqual(mistake(["--bogus=1"]), {
    message: "Unknown option '--bogus'",
    mistake: "unknown",
    word: "--bogus",
  });
  assert.deepEqual(mistake(["-hx"]), {
    message: "Unknown option '-x'",
    mistake: "unknown",
    word: "-x",
  });
  assert.deepEqual(mistake(["-c"]), {
    message: "Option '--config <value>' argument missing",
    mistake: "missing",
    word: "-c",
  });
  assert.deepEqual(mistake(["--arg", "-y"]), {
    message: "Option '--arg <value>' argument missing: '-y' looks like an option (a value " +
      "that starts with a dash is written --arg=-y)",
    mistake: "missing",
    word: "--arg",
  });
  assert.deepEqual(mistake(["--yes=no"]), {
    message: "Option '--yes' does not take an argument",
    mistake: "no-argument",
    word: "--yes",
  });
  assert.deepEqual(mistake(["--", "extra"], { positionals: false }), {
    message: "Unexpected argument 'extra'. This command does not take positional arguments",
    mistake: "unexpected",
    word: "extra",
  });
  // Names of Object.prototype are not options.
  assert.equal(mistake(["--constructor", "x"]).mistake, "unknown");
  assert.equal(mistake(["--toString"]).mistake, "unknown");
});

Deno.test("dashedPositionals: a word that is not shaped like an option is a positional", () => {
  const rules = { dashedPositionals: true };
  // Random ids may start with a dash.
  assert.deepEqual(parseArgs(["revoke", "-Xq3_9aZ", "-h"], INIT_LIKE, rules), {
    values: { help: true },
    positionals: ["revoke", "-Xq3_9aZ"],
  });
  assert.deepEqual(parseArgs(["--config", "-weird.json"], INIT_LIKE, rules).values, {
    config: "-weird.json",
  });
  assert.throws(() => parseArgs(["--config", "--yes"], INIT_LIKE, rules), /argument missing/);
  assert.throws(() => parseArgs(["--bogus"], INIT_LIKE, rules), /Unknown option '--bogus'/);
});
