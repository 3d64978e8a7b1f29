/** What each `deno task` runs for the arguments the user added (lib/cli/task-plan.ts). */
import assert from "node:assert/strict";
import { COMPILE_TARGETS, MAIN, planTask, type Run, scanArgs } from "../../lib/cli/task-plan.ts";
import { GRANTS_SYNTAX, INIT_SYNTAX } from "../../lib/cli/options.ts";
import { scriptedIo } from "../helpers/io.ts";
import { RELEASE_FLAGS } from "../../lib/permissions/derive.ts";

function io(cwd: string, env: Record<string, string> = {}) {
  return scriptedIo(cwd, { env });
}

Deno.test("scanArgs reads --config the way the commands do, and stops at --", () => {
  assert.deepEqual(scanArgs(["list", "--config", "a.json"]), { config: "a.json", help: false });
  assert.deepEqual(scanArgs(["--config=b.json"]), { config: "b.json", help: false });
  assert.deepEqual(scanArgs(["-c", "c.json", "-h"]), { config: "c.json", help: true });
  assert.deepEqual(scanArgs(["-cd.json"]), { config: "d.json", help: false });
  assert.deepEqual(scanArgs(["revoke", "--", "--config", "-h"]), { help: false });
  assert.deepEqual(scanArgs(["-l", "127.0.0.1:1", "--listen=[::1]:2"]), {
    listen: "[::1]:2",
    help: false,
  });
  assert.deepEqual(scanArgs(["-l127.0.0.1:3", "-c", "e.json"]), {
    config: "e.json",
    listen: "127.0.0.1:3",
    help: false,
  });
});

Deno.test("scanArgs reads with the command's own syntax; null for a mistake", () => {
  // An id may start with a dash: for grants, "-cd.json" is an id, not a config.
  assert.deepEqual(scanArgs(["revoke", "-cd.json"], GRANTS_SYNTAX), { help: false });
  assert.deepEqual(scanArgs(["list", "--user", "octocat", "-c", "a.json"], GRANTS_SYNTAX), {
    config: "a.json",
    help: false,
  });
  assert.equal(scanArgs(["list", "--user"], GRANTS_SYNTAX), null);
  assert.equal(scanArgs(["stray"], INIT_SYNTAX), null);
  assert.equal(scanArgs(["--bogus"]), null);
});

Deno.test("help, version and flag mistakes run main.ts with no permission", async () => {
  const { io: t } = io("/nowhere", { MCP_PROXY_CONFIG: "/nowhere/missing.json" });
  const bare = (args: string[]): Run[] => [
    { args: ["run", "--no-prompt", MAIN, ...args], detached: false },
  ];
  assert.deepEqual(await planTask("start", ["--help"], t), bare(["--help"]));
  assert.deepEqual(await planTask("start", ["-V"], t), bare(["-V"]));
  assert.deepEqual(await planTask("start", ["--bogus"], t), bare(["--bogus"]));
  assert.deepEqual(await planTask("grants", ["list", "-h"], t), bare(["grants", "list", "-h"]));
  assert.deepEqual(await planTask("init", ["--help"], t), bare(["init", "--help"]));
  assert.deepEqual(await planTask("init", ["--bogus"], t), bare(["init", "--bogus"]));
  assert.deepEqual(await planTask("check", ["extra"], t), bare(["check", "extra"]));
  assert.deepEqual(
    await planTask("clients", ["list", "--all"], t),
    bare(["clients", "list", "--all"]),
  );
});

Deno.test("init may read and write exactly the file it creates", async () => {
  const { io: t } = io("/home/pi/mcp");
  const [run] = await planTask("init", ["--config", "sub/new.json", "--yes"], t) as Run[];
  assert.deepEqual(run.args, [
    "run",
    "--no-prompt",
    "--allow-read=/home/pi/mcp/sub/new.json",
    "--allow-write=/home/pi/mcp/sub/new.json",
    MAIN,
    "init",
    "--config",
    "sub/new.json",
    "--yes",
  ]);
  const [plain] = await planTask("init", [], t) as Run[];
  assert.ok(plain.args.includes("--allow-write=/home/pi/mcp/config.json"));
});

Deno.test("compile refuses the demo, a relative --installed-config and unknown targets; release takes no arguments", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const none = io(dir);
    assert.equal(await planTask("compile", [], none.io), 2);
    assert.match(none.err.join("\n"), /^error: no config file at \.\/config\.json: name yours/);
    assert.match(none.err.join("\n"), /"deno task compile:release"/);
    const relative = io(dir);
    assert.equal(await planTask("compile", ["--installed-config", "config.json"], relative.io), 2);
    assert.match(relative.err[0], /--installed-config must be an absolute path/);
    const target = io(dir);
    assert.equal(await planTask("compile:riscv64-unknown-linux-gnu", [], target.io), 2);
    assert.match(target.err[0], /unknown target "riscv64-unknown-linux-gnu"/);
    const release = io(dir);
    assert.equal(await planTask("compile:release", ["--config", "x.json"], release.io), 2);
    const runs = await planTask("compile:release", [], io(dir).io) as Run[];
    assert.deepEqual(
      runs.map((r) => r.args),
      COMPILE_TARGETS.map((t) => [
        "compile",
        ...RELEASE_FLAGS,
        "--target",
        t,
        "--output",
        `dist/release/mcp-oauth-proxy-${t}`,
        MAIN,
      ]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
