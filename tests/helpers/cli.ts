/**
 * Runs `main.ts` as a real process for the setup and owner commands, with the narrow Deno flags
 * each one documents: `init` with read and write of its folder (as `deno task init`), `check`,
 * `clients` and `grants` with what their `--print-flags` prints (as the `deno task` wrappers).
 * Or runs the same code in this process (`main` in `runInProcess` and `runOnScreen`, the
 * launcher's `launch` in `runTaskInProcess`): what the commands print and return, without a Deno
 * start per run.
 */
import { type Io, shellWord } from "../../lib/cli/common.ts";
import { runCli } from "../../lib/cli/run.ts";
import { scriptedIo } from "./io.ts";
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

/**
 * `runTask`, in this process: the launcher's `launch` (lib/cli/launch.ts) with the words the
 * task line in deno.json passes it, then `args`, with a scripted terminal in the project folder
 * and exactly the variables `env`. What it plans runs as real processes; a plan refused (a
 * config mistake) runs nothing.
 */
export async function runTaskInProcess(
  task: string,
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<CliResult> {
  const started = performance.now();
  const line: string = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).tasks[task];
  const words = line.split(" ");
  const argv = [...words.slice(words.indexOf("lib/cli/launch.ts") + 1), ...args];
  const { io, out, err } = scriptedIo(ROOT, { env: options.env ?? cliEnv() });
  const { launch } = await import("../../lib/cli/launch.ts");
  const code = await launch(argv, io);
  return { code, stdout: lines(out), stderr: lines(err), ms: performance.now() - started };
}

/** Lines as a process prints them, each ended by a newline. */
function lines(printed: string[]): string {
  return printed.map((line) => `${line}\n`).join("");
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

/**
 * `main.ts <args>` run by the same code (`main`) in this process, in `cwd` with exactly the
 * variables `env` (as `runMain`'s process, whose environment is cleared) and stdin not a
 * terminal: what it printed and the exit code it returns (which the process would exit with).
 * No Deno start, and all permissions: what only a process shows (its exit status, the narrow
 * flags being enough, a terminal) is for `runMain`, `runNarrow` and `runOnTerminal`.
 */
export async function runInProcess(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const started = performance.now();
  const { io, out, err } = scriptedIo(options.cwd ?? ROOT, { env: options.env ?? cliEnv() });
  const code = await mainInProcess(args, io);
  return { code, stdout: lines(out), stderr: lines(err), ms: performance.now() - started };
}

/** `main.ts`'s `main`, loaded when first used (most test files that use this module never do). */
async function mainInProcess(args: string[], io: Io): Promise<number> {
  const { main } = await import("../../main.ts");
  return await main(args, io);
}

/** `runNarrow`'s command, in this process (`runInProcess`). */
export function runNarrowInProcess(
  command: "check" | "clients" | "grants",
  configPath: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return runInProcess([command, "--config", configPath, ...args], options);
}

/**
 * `runOnTerminal` in this process: `main` with a terminal that answers `dialogue`. Each question
 * must be the next one of the dialogue; a question not in it, or the command ending before the
 * dialogue does, fails with the transcript. The transcript (stdout and stderr together, each
 * question followed by its answer, as a terminal echoes it) is `stdout`.
 */
export async function runOnScreen(
  args: string[],
  dialogue: Exchange[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  const started = performance.now();
  const pending = [...dialogue];
  let screen = "";
  const show = (line: string) => void (screen += `${line}\n`);
  const io: Io = {
    out: show,
    err: show,
    interactive: true,
    ask: (question) => {
      const [expected, answer] = pending.shift() ?? [undefined, null];
      if (question !== expected) {
        const what = expected === undefined
          ? " after the last answer"
          : `, expected ${JSON.stringify(expected)}`;
        throw new Error(`asked ${JSON.stringify(question)}${what}:\n${screen}`);
      }
      show(`${question} ${answer ?? ""}`);
      return answer;
    },
    cwd: options.cwd,
    env: (name) => (options.env ?? cliEnv())[name],
  };
  const code = await mainInProcess(args, io);
  if (pending.length > 0) {
    throw new Error(`ended before asking ${JSON.stringify(pending[0][0])}:\n${screen}`);
  }
  return { code, stdout: screen, stderr: "", ms: performance.now() - started };
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

/**
 * What `printedFlags` prints, computed by the same command code (`runCli`) in this process with
 * the same working directory and environment: one Deno start less per command a test runs (the
 * --print-flags tests in cli-check.test.ts and cli-owner.test.ts compare the two).
 */
export async function derivedFlags(
  command: "check" | "clients" | "grants",
  configPath: string,
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string[]> {
  if (!configPath.startsWith("/")) return await printedFlags(command, configPath, options);
  const { io, out, err } = scriptedIo(options.cwd ?? ROOT, { env: options.env ?? cliEnv() });
  const code = await runCli(command, ["--print-flags", "--config", configPath], io);
  if (code !== 0) throw new Error(`--print-flags failed: ${err.join("\n")}`);
  return out.join("\n").trim().split(" ");
}

/** Runs `command` with the flags its `--print-flags` derives for `configPath`. */
export async function runNarrow(
  command: "check" | "clients" | "grants",
  configPath: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const flags = await derivedFlags(command, configPath, options);
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

/** One question a terminal session expects, and the answer typed (null: Ctrl-D, end of input). */
export type Exchange = [question: string, answer: string | null];

/**
 * Runs `deno run <flags> main.ts <args>` on a pseudo-terminal (util-linux `script`), so that
 * stdin is a terminal and `prompt()` asks, as for a person. Each question must be asked in turn
 * (the prompt is on screen and the process waits) before its answer is typed; a question not in
 * the dialogue, or the process ending early, fails with the transcript. The transcript (stdout
 * and stderr together, as on a screen, with the typed answers echoed) is `stdout`.
 */
export async function runOnTerminal(
  flags: string[],
  args: string[],
  dialogue: Exchange[],
  options: { cwd: string },
): Promise<CliResult> {
  const started = performance.now();
  const line = [Deno.execPath(), "run", ...flags, `${ROOT}/main.ts`, ...args].map(shellWord);
  const child = new Deno.Command("script", {
    args: ["--quiet", "--return", "--command", line.join(" "), "/dev/null"],
    cwd: options.cwd,
    // A dumb terminal: prompt() then prints plain text, without cursor movements.
    env: cliEnv({ TERM: "dumb", SHELL: "/bin/sh" }),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const screen = new Screen(child.stdout.getReader());
  const keys = child.stdin.getWriter();
  try {
    for (const [question, answer] of dialogue) {
      await screen.waitForPrompt(question);
      await keys.write(new TextEncoder().encode(answer === null ? "\x04" : `${answer}\r`));
    }
    await screen.waitForEnd();
  } catch (error) {
    child.kill();
    throw error;
  } finally {
    await keys.close().catch(() => {});
  }
  const { code } = await child.status;
  const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
  return { code, stdout: screen.text, stderr, ms: performance.now() - started };
}

/** What a terminal shows, read as it arrives. */
class Screen {
  text = "";
  #seen = 0;
  #decoder = new TextDecoder();

  constructor(private reader: ReadableStreamDefaultReader<Uint8Array>) {}

  /** Reads until `question` is the open prompt; fails on another prompt or the end. */
  async waitForPrompt(question: string): Promise<void> {
    while (true) {
      const open = this.#openPrompt();
      if (open !== undefined) {
        if (open !== question) {
          throw new Error(
            `asked ${JSON.stringify(open)}, expected ${JSON.stringify(question)}:\n${this.text}`,
          );
        }
        this.#seen = this.text.length;
        return;
      }
      if (!await this.#read()) {
        throw new Error(`ended before asking ${JSON.stringify(question)}:\n${this.text}`);
      }
    }
  }

  /** Reads to the end; fails if another question is asked. */
  async waitForEnd(): Promise<void> {
    while (await this.#read()) {
      const open = this.#openPrompt();
      if (open !== undefined) {
        throw new Error(`asked ${JSON.stringify(open)} after the last answer:\n${this.text}`);
      }
    }
  }

  /**
   * The question waiting for an answer: the unanswered last line ending in ": " or "] " (prompt()
   * writes the question and a space in one write, and lines end in a newline).
   */
  #openPrompt(): string | undefined {
    const fresh = this.text.slice(this.#seen);
    const last = fresh.slice(fresh.lastIndexOf("\n") + 1);
    return /[:\]] $/.test(last) ? last.slice(0, -1) : undefined;
  }

  async #read(): Promise<boolean> {
    const { value, done } = await this.reader.read();
    if (done) return false;
    this.text += this.#decoder.decode(value, { stream: true }).replaceAll("\r", "");
    return true;
  }
}
