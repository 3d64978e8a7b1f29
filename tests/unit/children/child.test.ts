/**
 * One child process on its own (real `sh` processes): stdout framing as newline-delimited JSON,
 * non-JSON lines skipped, an oversized line ending the child, stderr labelled and rate-limited,
 * the child's own session, and the clean environment.
 */
import assert from "node:assert/strict";
import { Child, type ChildSpec } from "../../../lib/children/child.ts";
import { childEnvironment } from "../../../lib/children/environment.ts";
import { ProcessGroups } from "../../../lib/children/group.ts";
import { createLogger } from "../../../lib/log.ts";

function run(script: string, maxLineBytes = 1 << 20) {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(line) });
  const spec: ChildSpec = {
    server: "c",
    command: "sh",
    args: ["-c", script],
    env: {},
    maxLineBytes,
  };
  const child = Child.spawn(spec, log, new ProcessGroups(log));
  const messages: unknown[] = [];
  child.onMessage = (message) => messages.push(message);
  return { child, lines, messages };
}

Deno.test("stdout: one JSON value per line, split across writes or not; blank and non-JSON lines skipped with a warning", async () => {
  const { child, lines, messages } = run(
    `printf '{"a":1}\\n\\n{"b":'; sleep 0.05; printf '2}\\nnot json\\n{"c":[3]}\\n'`,
  );
  const info = await child.exited;
  assert.equal(info.code, 0);
  assert.deepEqual(messages, [{ a: 1 }, { b: 2 }, { c: [3] }]);
  const warned = lines.filter((l) => l.includes("non-JSON line"));
  assert.equal(warned.length, 1);
  assert.match(warned[0], /not json/);
});

for (const ending of ["unterminated", "terminated"]) {
  Deno.test(`stdout: a line over maxLineBytes (${ending}) ends the child, and the exit says why`, async () => {
    const newline = ending === "terminated" ? "; echo" : "";
    const { child, messages } = run(
      `printf '{"ok":1}\\n'; head -c 5000 /dev/zero | tr '\\0' x${newline}; sleep 30`,
      1000,
    );
    const info = await child.exited;
    assert.deepEqual(messages, [{ ok: 1 }]);
    assert.equal(info.reason, "stdout line over 1000 bytes (limits.maxMessageOut)");
    assert.deepEqual([info.code, info.signal], [null, "SIGTERM"]);
  });
}

Deno.test("stderr: each line logged with the child's label, at most 20 a second, the rest counted", async () => {
  // The 50 lines in one write (one printf): a loop of 50 echos on a loaded machine can spread
  // over three one-second windows, fewer than 20 in each, and then nothing is dropped.
  const numbers = Array.from({ length: 50 }, (_, i) => i).join(" ");
  const { child, lines } = run(`printf 'line %s\\n' ${numbers} >&2; sleep 1.2; echo after >&2`);
  const info = await child.exited;
  const logged = lines.filter((l) => l.includes(`child stderr child="${child.label}" text="line `));
  // 50 lines within at most two one-second windows: no more than 2 × 20 logged.
  assert.ok(logged.length <= 40 && logged.length >= 1, `${logged.length} lines`);
  assert.ok(lines.some((l) => /child stderr rate-limited .*dropped=\d+/.test(l)));
  assert.equal(info.lastStderr, "after");
});

Deno.test("spawn: the child leads a session and a process group of its own (launchDetached)", async () => {
  const { child, messages } = run(`printf '{"ids":"%s"}\\n' "$(ps -o pid=,pgid=,sid= -p $$)"`);
  assert.equal((await child.exited).code, 0);
  const ids = (messages[0] as { ids: string }).ids.trim().split(/\s+/).map(Number);
  assert.deepEqual(ids, [child.pid, child.pid, child.pid]);
});

Deno.test("the environment: a few of the proxy's variables plus the server's own, nothing else", () => {
  Deno.env.set("MOP_TEST_SECRET", "s3cret");
  try {
    const env = childEnvironment({ API_KEY: "k" });
    assert.equal(env.MOP_TEST_SECRET, undefined);
    assert.equal(env.API_KEY, "k");
    assert.equal(env.PATH, Deno.env.get("PATH"));
    for (const name of Object.keys(env)) {
      assert.match(name, /^(PATH|HOME|USER|LANG|LC_[A-Z_]+|TZ|API_KEY)$/, name);
    }
  } finally {
    Deno.env.delete("MOP_TEST_SECRET");
  }
});
