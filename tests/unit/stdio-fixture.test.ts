import assert from "node:assert/strict";
import { parseFlags } from "../fixtures/stdio-server.ts";

Deno.test("stdio fixture flags: defaults, --flag=value, --flag value, booleans", () => {
  assert.deepEqual(parseFlags([]), { "init-delay": "0", name: "fixture" });
  assert.deepEqual(
    parseFlags(["--name=a", "--init-delay", "50", "--noise", "--crash-if-exists=/tmp/x"]),
    { "init-delay": "50", name: "a", noise: true, "crash-if-exists": "/tmp/x" },
  );
  assert.equal(parseFlags(["--crash-on-start"])["crash-on-start"], true);
});

Deno.test("stdio fixture flags: a typo fails instead of running the default fixture", () => {
  assert.throws(() => parseFlags(["--nmae=a"]), /Unknown option '--nmae'/);
  assert.throws(() => parseFlags(["name=a"]), /Unexpected argument 'name=a'/);
  assert.throws(() => parseFlags(["--noise=1"]), /'--noise' does not take an argument/);
  assert.throws(() => parseFlags(["--name"]), /'--name <value>' argument missing/);
});
