/**
 * The official MCP conformance suite's server scenarios, run end to end against the proxy
 * (`/mcp/<name>`, Streamable HTTP) in front of tests/fixtures/conformance-server.ts.
 *
 * Scenarios that fail because of the proxy are listed, with the reason, in
 * tests/fixtures/conformance-baseline.yml; a listed scenario that passes fails this test too,
 * so the baseline cannot go stale.
 */
import assert from "node:assert/strict";
import { ROOT, startProxy } from "../helpers/proxy.ts";

const CONFORMANCE = "npm:@modelcontextprotocol/conformance@0.1.16";
const FIXTURE = `${ROOT}/tests/fixtures/conformance-server.ts`;
const BASELINE = `${ROOT}/tests/fixtures/conformance-baseline.yml`;

/** Every server scenario of the pinned package (`conformance list`), pending ones included. */
const SCENARIOS = [
  "server-initialize",
  "logging-set-level",
  "ping",
  "completion-complete",
  "tools-list",
  "tools-call-simple-text",
  "tools-call-image",
  "tools-call-audio",
  "tools-call-embedded-resource",
  "tools-call-mixed-content",
  "tools-call-with-logging",
  "tools-call-error",
  "tools-call-with-progress",
  "tools-call-sampling",
  "tools-call-elicitation",
  "json-schema-2020-12",
  "elicitation-sep1034-defaults",
  "server-sse-polling",
  "server-sse-multiple-streams",
  "elicitation-sep1330-enums",
  "resources-list",
  "resources-read-text",
  "resources-read-binary",
  "resources-templates-read",
  "resources-subscribe",
  "resources-unsubscribe",
  "prompts-list",
  "prompts-get-simple",
  "prompts-get-with-args",
  "prompts-get-embedded-resource",
  "prompts-get-with-image",
  "dns-rebinding-protection",
];

interface Check {
  id: string;
  name: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | string;
  description?: string;
  errorMessage?: string;
}

/** The scenario names listed under `server:` in the baseline file (a YAML list of strings). */
async function readBaseline(): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(BASELINE);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  const names: string[] = [];
  let inServer = false;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trimEnd();
    if (line.trim() === "") continue;
    if (/^\S/.test(line)) {
      inServer = /^server:\s*$/.test(line);
      continue;
    }
    const m = /^\s+-\s+["']?([^"'\s]+)["']?$/.exec(line);
    if (inServer && m) names.push(m[1]);
  }
  return names;
}

/** Reads results/server-<scenario>-<timestamp>/checks.json under `dir`. */
async function readResults(dir: string): Promise<Map<string, Check[]>> {
  const results = new Map<string, Check[]>();
  for await (const entry of Deno.readDir(dir)) {
    const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(entry.name);
    if (!entry.isDirectory || !m) continue;
    const checks = JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}/checks.json`));
    results.set(m[1], checks as Check[]);
  }
  return results;
}

function describe(check: Check): string {
  return `${check.status} ${check.id}: ${check.errorMessage ?? check.description ?? ""}`;
}

// per-session passes too, but the CLI never ends its sessions (no DELETE), so each of its ~45
// sessions would keep a child running until the limits evict them; it is left out for speed.
for (const mode of ["per-user", "shared"] as const) {
  Deno.test(`conformance (${mode}): every server scenario of ${CONFORMANCE} passes`, async () => {
    const proxy = await startProxy({
      mcpServers: { conf: { command: "deno", args: ["run", "--no-prompt", FIXTURE], mode } },
    });
    const work = await Deno.makeTempDir({ prefix: "mop-conformance-" });
    try {
      const baseline = await readBaseline();
      for (const name of baseline) {
        assert.ok(SCENARIOS.includes(name), `baseline names an unknown scenario: ${name}`);
      }
      const args = [
        "run",
        "-A",
        CONFORMANCE,
        "server",
        "--url",
        proxy.url("conf"),
        "--suite",
        "all",
        "-o",
        `${work}/results`,
      ];
      if (baseline.length > 0) args.push("--expected-failures", BASELINE);
      const out = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: work,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      const transcript = `\n--- conformance stdout (tail) ---\n${stdout.slice(-4000)}` +
        `\n--- conformance stderr (tail) ---\n${stderr.slice(-2000)}`;

      const results = await readResults(`${work}/results`).catch((error) => {
        throw new Error(`no conformance results (${error}); exit ${out.code}${transcript}`);
      });
      assert.deepEqual(
        [...results.keys()].sort(),
        [...SCENARIOS].sort(),
        `the CLI ran a different set of scenarios${transcript}`,
      );

      const unexpected: string[] = [];
      const stale: string[] = [];
      for (const scenario of SCENARIOS) {
        const checks = results.get(scenario)!;
        // The CLI's baseline logic counts a WARNING as failing too.
        const bad = checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING");
        const expected = baseline.includes(scenario);
        if (bad.length > 0 && !expected) {
          unexpected.push(`${scenario}:\n${bad.map((c) => `    ${describe(c)}`).join("\n")}`);
        }
        if (bad.length === 0 && expected) stale.push(scenario);
        if (bad.length === 0 && !checks.some((c) => c.status === "SUCCESS")) {
          unexpected.push(`${scenario}: no check succeeded`);
        }
      }
      assert.deepEqual(
        unexpected,
        [],
        `conformance checks failed:\n${unexpected.join("\n")}\n--- proxy log (tail) ---\n` +
          proxy.logs().slice(-3000),
      );
      assert.deepEqual(
        stale,
        [],
        `these scenarios now pass; remove them from ${BASELINE}: ${stale.join(", ")}`,
      );
      // The CLI applies the same baseline; its verdict must agree.
      assert.equal(out.code, 0, `the conformance CLI exited ${out.code}${transcript}`);
    } finally {
      await proxy.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  });
}
