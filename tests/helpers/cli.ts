/**
 * Runs `main.ts` as a real process for the setup and owner commands, with the narrow Deno flags
 * each one documents: `init` with read and write of its folder (as `deno task init`), `check`,
 * `clients` and `grants` with what their `--print-flags` prints (as the `deno task` wrappers).
 */
import { ROOT } from "./proxy.ts";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time of the process, in milliseconds. */
  ms: number;
}

/** The environment the CLI processes get (nothing else of the test's). */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    NO_COLOR: "1",
    ...extra,
  };
}

/** `deno run <flags> main.ts <args>` with stdin closed (not a terminal). */
export function runMain(
  flags: string[],
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return runDeno(["run", ...flags, `${ROOT}/main.ts`, ...args], options);
}

/**
 * `deno task -q <task> <args>` in the project folder, as a user types it (`-q` only leaves out
 * Deno's "Task …" line, so what remains is the task's own output).
 */
export function runTask(
  task: string,
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<CliResult> {
  return runDeno(["task", "-q", task, ...args], { ...options, cwd: ROOT });
}

async function runDeno(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> },
): Promise<CliResult> {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd ?? ROOT,
    env: options.env ?? cliEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: decode(out.stdout),
    stderr: decode(out.stderr),
    ms: performance.now() - started,
  };
}

/** What `main.ts <command> --print-flags` prints, run as the deno task runs it. */
export async function printedFlags(
  command: "check" | "clients" | "grants",
  configPath: string,
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string[]> {
  const res = await runMain(
    ["--quiet", "--allow-read", "--allow-env"],
    [command, "--print-flags", "--config", configPath],
    options,
  );
  if (res.code !== 0) throw new Error(`--print-flags failed: ${res.stderr}`);
  return res.stdout.trim().split(" ");
}

/** Runs `command` with the flags its `--print-flags` derives for `configPath`. */
export async function runNarrow(
  command: "check" | "clients" | "grants",
  configPath: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const flags = await printedFlags(command, configPath, options);
  return await runMain(flags, [command, "--config", configPath, ...args], options);
}

/** The lines of a table printed by `clients list` or `grants list`, split into cells. */
export function tableRows(stdout: string): { headers: string[]; rows: string[][] } {
  const lines = stdout.split("\n").filter((l) => l.trim() !== "");
  const header = lines[0];
  // Columns start where the header's upper-case words start.
  const starts = [...header.matchAll(/(?:^|\s{2})(\S)/g)].map((m) => m.index! + m[0].length - 1);
  const cut = (line: string) =>
    starts.map((s, i) => line.slice(s, i + 1 < starts.length ? starts[i + 1] : undefined).trim());
  return { headers: cut(header), rows: lines.slice(1).map(cut) };
}
