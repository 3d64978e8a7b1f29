/**
 * The launcher (lib/cli/launch.ts) holds SIGINT and SIGTERM for its whole run: a stop signal that
 * comes after `runForwarding` removed its listeners must not end it by the default action.
 */
import assert from "node:assert/strict";

const LAUNCH = new URL("../../lib/cli/launch.ts", import.meta.url).href;

/** Runs `runForwarding`'s listener lifecycle in a child, then signals the child itself. */
async function lateSignal(signal: Deno.Signal, hold: boolean) {
  const script = `
    ${
    hold
      ? `const { holdStopSignals } = await import(${JSON.stringify(LAUNCH)}); holdStopSignals();`
      : ""
  }
    const forward = () => {};
    Deno.addSignalListener(${JSON.stringify(signal)}, forward);
    Deno.removeSignalListener(${JSON.stringify(signal)}, forward);
    Deno.kill(Deno.pid, ${JSON.stringify(signal)});
    await new Promise((resolve) => setTimeout(resolve, 200));
    console.log("still running");
    Deno.exit(7);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout).trim() };
}

Deno.test("launcher: a late SIGINT or SIGTERM does not end it; without the hold it would", async () => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    assert.deepEqual(await lateSignal(signal, true), { code: 7, stdout: "still running" }, signal);
    // What the hold is for: Deno's default action comes back with the last listener's removal.
    const bare = await lateSignal(signal, false);
    assert.equal(bare.stdout, "", signal);
    assert.equal(bare.code, signal === "SIGINT" ? 130 : 143, signal);
  }
});
