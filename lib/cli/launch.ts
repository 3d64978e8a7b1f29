/**
 * The launcher behind the `deno task` wrappers (deno.json), run with `--allow-read`,
 * `--allow-env` and `--allow-run=deno` only:
 *
 *   deno run … lib/cli/launch.ts TASK [ARGS…] [--dry-run]
 *
 * `deno task` appends the user's arguments to the task line and has no `$@`, so the flags cannot
 * be derived inside the line. The launcher reads the arguments, derives the narrow flags
 * (task-plan.ts) and runs each planned `deno` command as its child with exactly those flags,
 * forwarding signals and returning the child's exit code. `--dry-run` prints the command lines
 * instead. A config mistake prints its message and exits 2 before anything runs.
 */
import { type Io, processIo, shellWord } from "./common.ts";
import { planTask, type Run } from "./task-plan.ts";

const STOP_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];
const SIGNALS: Deno.Signal[] = [...STOP_SIGNALS, "SIGHUP"];

/**
 * Plans and runs `TASK ARGS…` with `io` (the process's terminal, working directory and
 * environment by default); returns the exit code.
 */
export async function launch(argv: string[], io: Io = processIo()): Promise<number> {
  const [task = "", ...rest] = argv;
  const end = rest.indexOf("--");
  const options = end === -1 ? rest : rest.slice(0, end);
  const dryRun = options.includes("--dry-run");
  const args = [
    ...options.filter((a) => a !== "--dry-run"),
    ...(end === -1 ? [] : rest.slice(end)),
  ];
  let plan;
  try {
    plan = await planTask(task, args, io);
  } catch (error) {
    io.err(`error: ${(error as Error).message}`);
    return 1;
  }
  if (typeof plan === "number") return plan;
  if (dryRun) {
    for (const run of plan) io.out(["deno", ...run.args].map(shellWord).join(" "));
    return 0;
  }
  for (const run of plan) {
    const code = await runForwarding(run);
    if (code !== 0) return code;
  }
  return 0;
}

/**
 * Runs one command and waits for it, forwarding SIGINT, SIGTERM and SIGHUP. The proxy runs
 * detached (its own session): Ctrl-C in a terminal reaches the launcher both from the terminal
 * and from `deno task`, which forwards it too, so each stop signal is forwarded once and the
 * proxy starts one orderly shutdown; every SIGHUP (reload) is forwarded. Other commands stay
 * in the terminal's process group (init asks questions on it).
 */
async function runForwarding(run: Run): Promise<number> {
  let child: Deno.ChildProcess | undefined;
  const pending: Deno.Signal[] = [];
  const forwarded = new Set<Deno.Signal>();
  const send = (signal: Deno.Signal) => {
    try {
      child!.kill(signal);
    } catch {
      // Already gone: its status ends the wait.
    }
  };
  const listeners = SIGNALS.map((signal) => {
    const listener = () => {
      if (STOP_SIGNALS.includes(signal)) {
        if (forwarded.has(signal)) return;
        forwarded.add(signal);
      }
      if (child) send(signal);
      else pending.push(signal);
    };
    Deno.addSignalListener(signal, listener);
    return { signal, listener };
  });
  try {
    child = new Deno.Command(denoExecutable(), {
      args: run.args,
      stdin: run.detached ? "null" : "inherit",
      detached: run.detached,
    }).spawn();
    for (const signal of pending) send(signal);
    return (await child.status).code;
  } finally {
    for (const { signal, listener } of listeners) Deno.removeSignalListener(signal, listener);
  }
}

/**
 * This `deno` when the run permission covers its path; otherwise `deno` by name, which
 * `--allow-run=deno` grants (the `deno` on PATH: the same program unless this one was started
 * by a path outside PATH).
 */
function denoExecutable(): string {
  const self = Deno.execPath();
  const granted = Deno.permissions.querySync({ name: "run", command: self }).state === "granted";
  return granted ? self : "deno";
}

/**
 * Keeps SIGINT and SIGTERM from ending the launcher by their default action while it runs
 * (signal(7), https://man7.org/linux/man-pages/man7/signal.7.html). Ctrl-C reaches it twice: from
 * the terminal's process group and forwarded by `deno task`. Deno restores a signal's default
 * action when its last listener is removed, as `runForwarding` does once the command has ended,
 * so a second Ctrl-C arriving late (a loaded machine) would kill the launcher (exit 130) before
 * it exits with the command's code. The forwarding itself is `runForwarding`'s.
 */
export function holdStopSignals(): void {
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, () => {});
}

if (import.meta.main) {
  holdStopSignals();
  Deno.exit(await launch(Deno.args));
}
