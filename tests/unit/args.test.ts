/** The command-line parser of main.ts: node:util parseArgs semantics for the options it uses. */
import assert from "node:assert/strict";
import { parseArgs } from "../../lib/args.ts";

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
