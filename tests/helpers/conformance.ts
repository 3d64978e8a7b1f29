/**
 * Runs the official MCP conformance CLI's server scenarios against a URL and compares what failed
 * with an expected-failures file (the CLI's own format: `server:` entries `<scenario>` or
 * `<scenario>:<check-id>`).
 */
import assert from "node:assert/strict";

export interface Check {
  id: string;
  name: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | "SKIPPED" | string;
  description?: string;
  errorMessage?: string;
}

export interface ConformanceRun {
  /** Checks by scenario name. */
  results: Map<string, Check[]>;
  code: number;
  /** The tail of the CLI's output, for assertion messages. */
  transcript: string;
}

/**
 * A proxy's `mcpServers` with one server per mode, each named after its mode and running the
 * stdio server `fixture`: one proxy then serves a conformance run per mode.
 */
export function serverPerMode(fixture: string, modes: readonly string[]) {
  return Object.fromEntries(
    modes.map((mode) => [mode, { command: "deno", args: ["run", "--no-prompt", fixture], mode }]),
  );
}

/** Runs `conformance server --url <url> <args>` in a temp dir and reads every checks.json. */
export async function runConformance(
  pkg: string,
  url: string,
  args: string[],
): Promise<ConformanceRun> {
  const work = await Deno.makeTempDir({ prefix: "mop-conformance-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", pkg, "server", "--url", url, ...args, "-o", `${work}/results`],
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
    return { results, code: out.code, transcript };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/**
 * Starts `run` for every key at once (the conformance runs of a file's servers spend most of
 * their time waiting on the proxy, so side by side they take the time of one); each promise is
 * marked handled, so a failed run fails the step that awaits it, not the whole file early.
 */
export function startEach<K, T>(
  keys: readonly K[],
  run: (key: K) => Promise<T>,
): Map<K, Promise<T>> {
  const started = new Map(keys.map((key) => [key, run(key)] as const));
  for (const promise of started.values()) promise.catch(() => {});
  return started;
}

/**
 * Asserts one run: the CLI ran exactly `scenarios`, nothing failed but the `expected` entries,
 * no expected entry passes now (it must leave `expectedFile`), and the CLI, which applies the
 * same file, exited 0. `proxyLog` is shown with unexpected failures.
 */
export function assertRun(run: ConformanceRun, o: {
  scenarios: string[];
  expected: string[];
  expectedFile: string;
  vacuous?: string[];
  proxyLog: () => string;
}): void {
  const { results, code, transcript } = run;
  assert.deepEqual(
    [...results.keys()].sort(),
    [...o.scenarios].sort(),
    `the CLI ran a different set of scenarios${transcript}`,
  );
  const { unexpected, stale } = compare(results, o.expected, o.vacuous);
  const summary = `\n--- results ---\n${table(results, o.expected)}`;
  assert.deepEqual(
    unexpected,
    [],
    `conformance checks failed:\n${unexpected.join("\n")}${summary}\n--- proxy log (tail) ---\n` +
      o.proxyLog().slice(-3000),
  );
  assert.deepEqual(
    stale,
    [],
    `these now pass; remove them from ${o.expectedFile}: ${stale.join(", ")}${summary}`,
  );
  assert.equal(code, 0, `the conformance CLI exited ${code}${transcript}`);
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

/** The entries listed under `server:` in an expected-failures file (a YAML list of strings). */
export async function readExpected(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
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

/** A check the CLI's baseline logic counts as failing. */
export function failing(check: Check): boolean {
  return check.status === "FAILURE" || check.status === "WARNING";
}

export function describe(check: Check): string {
  return `${check.status} ${check.id}: ${check.errorMessage ?? check.description ?? ""}`;
}

/**
 * Compares a run with the expected failures: `unexpected` lists failures not covered (and
 * scenarios where checks ran but none succeeded), `stale` lists entries that no longer fail.
 */
export function compare(
  results: Map<string, Check[]>,
  expected: string[],
  /** Scenarios known to exercise nothing here (every check skipped). */
  vacuous: string[] = [],
): { unexpected: string[]; stale: string[] } {
  const whole = new Set(expected.filter((e) => !e.includes(":")));
  const perCheck = new Set(expected.filter((e) => e.includes(":")));
  const unexpected: string[] = [];
  const stale: string[] = [];
  for (const [scenario, checks] of results) {
    const bad = checks.filter(failing);
    if (whole.has(scenario)) {
      if (bad.length === 0) stale.push(scenario);
      continue;
    }
    const surprising = bad.filter((c) => !perCheck.has(`${scenario}:${c.id}`));
    if (surprising.length > 0) {
      unexpected.push(`${scenario}:\n${surprising.map((c) => `    ${describe(c)}`).join("\n")}`);
    }
    if (
      !vacuous.includes(scenario) && bad.length === 0 && !checks.some((c) => c.status === "SUCCESS")
    ) {
      unexpected.push(`${scenario}: no check succeeded`);
    }
  }
  for (const entry of perCheck) {
    const [scenario, id] = [
      entry.slice(0, entry.indexOf(":")),
      entry.slice(entry.indexOf(":") + 1),
    ];
    const check = results.get(scenario)?.find((c) => c.id === id);
    if (!check || !failing(check)) stale.push(entry);
  }
  return { unexpected, stale };
}

/** One row per scenario: passed checks / counted checks, and "expected" when listed. */
export function table(results: Map<string, Check[]>, expected: string[]): string {
  const rows: string[] = [];
  for (const [scenario, checks] of [...results].sort(([a], [b]) => a.localeCompare(b))) {
    const passed = checks.filter((c) => c.status === "SUCCESS").length;
    const counted = checks.filter((c) => c.status === "SUCCESS" || failing(c)).length;
    const listed = expected.some((e) => e === scenario || e.startsWith(`${scenario}:`));
    const verdict = checks.some(failing)
      ? (listed ? "expected failure" : "FAIL")
      : passed > 0
      ? "pass"
      : "nothing exercised";
    rows.push(`${scenario}\t${passed}/${counted}\t${verdict}`);
  }
  return rows.join("\n");
}
