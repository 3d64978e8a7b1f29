/**
 * One stdio child process: spawned in its own process group with an explicit environment,
 * stdout framed as newline-delimited JSON, stdin writes serialised, stderr logged.
 */
import type { Logger } from "../log.ts";
import { childEnvironment } from "./environment.ts";
import { ORPHAN_GRACE_MS, type ProcessGroups } from "./group.ts";

export interface ChildSpec {
  server: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  /** A stdout line longer than this ends the child. */
  maxLineBytes: number;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** Why the proxy ended it, when it did. */
  reason?: string;
  lastStderr: string;
}

/**
 * What the supervisor needs of a child process: `Child` is the real one; unit tests supply fakes
 * through `SupervisorOptions.spawn`.
 */
export interface StdioChild {
  readonly id: number;
  readonly pid: number;
  readonly label: string;
  /** Settles once the process has exited and its pipes are drained. */
  readonly exited: Promise<ExitInfo>;
  /** True once a stop was requested. */
  readonly stopping: boolean;
  /** Called with each parsed JSON value the child writes to stdout. */
  onMessage: (message: unknown) => void;
  /** Queues one line (a serialised JSON-RPC message) for the child's stdin. */
  send(line: string): void;
  /** Ends the child (and its process group). */
  stop(reason: string): Promise<ExitInfo>;
}

/** Starts a child; throws SpawnError when the command cannot start at all. */
export type SpawnChild = (spec: ChildSpec, log: Logger, groups: ProcessGroups) => StdioChild;

/** Runs `command` with `options` as the leader of a new process group (see `Child.spawn`). */
export type LaunchChild = (command: string, options: Deno.CommandOptions) => Deno.ChildProcess;

/**
 * Deno's `detached`: the child gets a session of its own (setsid(2)), so it leads a process group
 * and the whole group (npx's grandchildren included) can be signalled at once.
 */
export const launchDetached: LaunchChild = (command, options) =>
  new Deno.Command(command, { ...options, detached: true }).spawn();

/** Thrown when a command cannot be started at all (not found, not permitted). */
export class SpawnError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SpawnError";
  }
}

let nextChildId = 1;
const encoder = new TextEncoder();
const STDERR_LINES_PER_SECOND = 20;
/** Terminal colour and cursor sequences (ECMA-48 CSI and OSC), noise in a log line. */
// deno-lint-ignore no-control-regex
const ANSI_ESCAPES = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;
const STDERR_LINE_CHARS = 1000;

/**
 * A running child process speaking the MCP stdio transport: JSON-RPC messages, one per line, on
 * stdin and stdout; stderr is for logs
 * (https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#stdio). Create with
 * `Child.spawn`.
 */
export class Child implements StdioChild {
  readonly id = nextChildId++;
  readonly exited: Promise<ExitInfo>;
  lastStderr = "";
  /** Called with each parsed JSON value the child writes to stdout. */
  onMessage: (message: unknown) => void = () => {};
  #stopping = false;
  #exited = false;
  #reason: string | undefined;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #writes: Promise<void> = Promise.resolve();
  #stderrBudget = STDERR_LINES_PER_SECOND;
  #stderrWindow = 0;
  #stderrDropped = 0;

  private constructor(
    readonly spec: ChildSpec,
    readonly process: Deno.ChildProcess,
    private readonly log: Logger,
    private readonly groups: ProcessGroups,
  ) {
    groups.add(process.pid);
    this.#writer = process.stdin.getWriter();
    // A write to a closed pipe rejects; the exit handler reports the real cause.
    this.#writer.closed.catch(() => {});
    const stdout = this.#readStdout();
    const stderr = this.#readStderr();
    this.exited = (async () => {
      const status = await process.status;
      this.#exited = true;
      // A leader that died on its own (a crash, kill -9) leaves its group behind, and a
      // grandchild may hold the pipes open: TERM the group now, KILL it after a grace period.
      if (!this.#stopping) groups.orphaned(process.pid, this.label).catch(() => {});
      await Promise.allSettled([stdout, stderr]);
      return {
        code: status.signal ? null : status.code,
        signal: status.signal ?? null,
        reason: this.#reason,
        lastStderr: this.lastStderr,
      };
    })();
  }

  get pid(): number {
    return this.process.pid;
  }

  get label(): string {
    return `${this.spec.server}#${this.id}`;
  }

  /**
   * Starts the command in its own process group; throws SpawnError if it cannot start. `launch`
   * runs the command with the options given (`launchDetached` by default); it must make the
   * child the leader of a new process group.
   */
  static spawn(
    spec: ChildSpec,
    log: Logger,
    groups: ProcessGroups,
    launch: LaunchChild = launchDetached,
  ): Child {
    let process: Deno.ChildProcess;
    try {
      process = launch(spec.command, {
        args: spec.args,
        cwd: spec.cwd,
        env: childEnvironment(spec.env),
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      });
    } catch (error) {
      throw new SpawnError(describeSpawnError(spec, error));
    }
    return new Child(spec, process, log, groups);
  }

  /** Queues one line (a serialised JSON-RPC message) for the child's stdin. */
  send(line: string): Promise<void> {
    const bytes = encoder.encode(line + "\n");
    this.#writes = this.#writes.then(async () => {
      if (this.#exited || this.#stopping) return;
      await this.#writer.ready;
      await this.#writer.write(bytes);
    }).catch(() => {});
    return this.#writes;
  }

  /** Ends the child and its process group: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(reason: string, graceMs = ORPHAN_GRACE_MS): Promise<ExitInfo> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#reason ??= reason;
      this.#writer.close().catch(() => {});
      await this.#signal("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), graceMs)),
      ]);
      clearTimeout(timer);
      if (killed) await this.#signal("SIGKILL");
    }
    const info = await this.exited;
    // The leader may exit on SIGTERM while a grandchild ignores it: make sure the group is gone.
    await this.#signal("SIGKILL");
    return info;
  }

  /** Signals the whole process group; the child alone if the group cannot be signalled. */
  async #signal(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    if (await this.groups.signal(this.pid, signal, this.label)) return;
    try {
      this.process.kill(signal);
    } catch {
      // Already exited.
    }
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  async #readStdout(): Promise<void> {
    const max = this.spec.maxLineBytes;
    const decoder = new TextDecoder();
    let parts: Uint8Array[] = [];
    let pending = 0;
    try {
      for await (const chunk of this.process.stdout) {
        let start = 0;
        while (start < chunk.length) {
          const newline = chunk.indexOf(10, start);
          if (newline === -1) {
            const rest = chunk.subarray(start);
            pending += rest.length;
            if (pending > max) {
              this.#tooLong(max);
              return;
            }
            parts.push(rest);
            break;
          }
          const piece = chunk.subarray(start, newline);
          if (pending + piece.length > max) {
            this.#tooLong(max);
            return;
          }
          let line: string;
          if (parts.length === 0) line = decoder.decode(piece);
          else {
            parts.push(piece);
            line = decoder.decode(concat(parts, pending + piece.length));
            parts = [];
            pending = 0;
          }
          this.#handleLine(line);
          start = newline + 1;
        }
      }
    } catch {
      // The pipe closes when the child exits; the exit status says why.
    }
  }

  #tooLong(max: number): void {
    const reason = `stdout line over ${max} bytes (limits.maxMessageOut)`;
    this.log.error("child wrote an oversized line; ending it", { child: this.label, reason });
    this.#reason = reason;
    this.stop(reason).catch(() => {});
    this.process.stdout.cancel().catch(() => {});
  }

  #handleLine(line: string): void {
    if (line.trim() === "") return;
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      this.log.warn("child wrote a non-JSON line to stdout; skipped", {
        child: this.label,
        line: line.slice(0, 200),
      });
      return;
    }
    this.onMessage(message);
  }

  async #readStderr(): Promise<void> {
    let buffered = "";
    try {
      for await (const chunk of this.process.stderr.pipeThrough(new TextDecoderStream())) {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) !== -1) {
          this.#stderrLine(buffered.slice(0, newline));
          buffered = buffered.slice(newline + 1);
        }
        if (buffered.length > 64 * 1024) {
          this.#stderrLine(buffered);
          buffered = "";
        }
      }
    } catch {
      // Closed with the child.
    }
    if (buffered) this.#stderrLine(buffered);
  }

  #stderrLine(raw: string): void {
    const line = raw.replace(/\r$/, "").slice(0, STDERR_LINE_CHARS);
    if (line.trim() === "") return;
    this.lastStderr = line;
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.#stderrWindow) {
      if (this.#stderrDropped > 0) {
        this.log.warn("child stderr rate-limited", {
          child: this.label,
          dropped: this.#stderrDropped,
        });
      }
      this.#stderrWindow = second;
      this.#stderrBudget = STDERR_LINES_PER_SECOND;
      this.#stderrDropped = 0;
    }
    if (this.#stderrBudget-- > 0) {
      this.log.info("child stderr", { child: this.label, text: line.replace(ANSI_ESCAPES, "") });
    } else this.#stderrDropped++;
  }
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function describeSpawnError(spec: ChildSpec, error: unknown): string {
  if (error instanceof Deno.errors.NotFound) {
    return `command "${spec.command}" not found` +
      (spec.cwd ? ` (or the working directory ${spec.cwd} does not exist)` : " on PATH");
  }
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    return `not permitted to run "${spec.command}": the proxy's --allow-run flag does not list it ` +
      `("deno task check-config" prints the flags this config needs)`;
  }
  return `cannot start "${spec.command}": ${
    error instanceof Error ? error.message : String(error)
  }`;
}
