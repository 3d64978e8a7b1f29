/**
 * Keeps one logical backend alive: spawns its child, owns the child's `initialize`, restarts
 * it with exponential backoff after an exit, and marks the server unavailable in a crash loop.
 */
import type { Logger } from "../log.ts";
import { Child, type ChildSpec, type ExitInfo, SpawnError } from "./child.ts";
import { ProcessGroups } from "./group.ts";

export type BackendState = "stopped" | "starting" | "ready" | "restarting" | "unavailable";

/** The parts of a child's InitializeResult the proxy keeps and replays to every client. */
export interface InitializeResult {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  serverInfo: { name: string; version: string; [key: string]: unknown };
  instructions?: string;
  [key: string]: unknown;
}

/** The backend cannot serve now; `retryAfterMs` says when it will try again. */
export class UnavailableError extends Error {
  constructor(message: string, readonly retryAfterMs: number) {
    super(message);
    this.name = "UnavailableError";
  }
}

/** The child exited or failed before it finished `initialize`. */
export class StartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartError";
  }
}

export interface SupervisorOptions {
  spec: ChildSpec;
  /** The protocol version the proxy asks its children for. */
  protocolVersion: string;
  clientInfo: { name: string; version: string };
  initTimeoutMs: number;
  restartDelayMs: number;
  maxRestartDelayMs?: number;
  crashLimit?: number;
  crashWindowMs?: number;
  log: Logger;
  /** Where spawned process groups are tracked (one per proxy, for the shutdown sweep). */
  groups?: ProcessGroups;
  /**
   * Asked before every child start, the timer-driven restarts included: throws
   * UnavailableError when the child limits leave no room.
   */
  admit?: () => void;
  /** First "still starting" log line after this long, then at doubling intervals. */
  slowStartMs?: number;
  now?: () => number;
  random?: () => number;
}

export interface SupervisorEvents {
  /** Every message from the ready child except the answer to the proxy's own `initialize`. */
  onMessage(message: Record<string, unknown>): void;
  /** The child exited while it was serving (not on a requested stop). */
  onExit(info: ExitInfo, description: string): void;
  /** A child finished `initialize`; `restarted` is true after an unexpected exit. */
  onReady(restarted: boolean): void;
}

const CAPABILITIES_OFFERED = { sampling: {}, elicitation: {}, roots: { listChanged: true } };
const SLOW_START_MS = 5000;

/** One supervised child slot: at most one child at a time, restarted on failure. */
export class Supervisor {
  state: BackendState = "stopped";
  child: Child | null = null;
  initResult: InitializeResult | null = null;
  lastActivity: number;
  restarts = 0;
  lastError: string | null = null;
  #exits: number[] = [];
  #retryAt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #starting: Promise<void> | null = null;
  #restartPending = false;
  #closed = false;
  #startedAt = 0;
  readonly #now: () => number;
  readonly #groups: ProcessGroups;

  constructor(readonly options: SupervisorOptions, private readonly events: SupervisorEvents) {
    this.#now = options.now ?? Date.now;
    this.#groups = options.groups ?? new ProcessGroups(options.log);
    this.lastActivity = this.#now();
  }

  /** How long the current child has been starting, in whole seconds; null when not starting. */
  get startingSeconds(): number | null {
    if (this.state !== "starting") return null;
    return Math.floor((this.#now() - this.#startedAt) / 1000);
  }

  get label(): string {
    return this.child?.label ?? this.options.spec.server;
  }

  /** Resolves once a child is initialized; starts one if needed. */
  async ready(): Promise<Child> {
    this.lastActivity = this.#now();
    for (;;) {
      if (this.#closed) throw new StartError("the proxy is shutting down");
      if (this.state === "ready" && this.child) return this.child;
      if (this.state === "unavailable") {
        const wait = Math.max(0, this.#retryAt - this.#now());
        throw new UnavailableError(
          `server "${this.options.spec.server}" is unavailable after repeated crashes` +
            (this.lastError ? ` (last: ${this.lastError})` : ""),
          wait,
        );
      }
      if (this.state === "stopped") {
        this.options.admit?.();
        this.#starting = this.#start(false);
      }
      if (this.#starting) {
        await this.#starting;
        continue;
      }
      // Restarting: wait for the scheduled restart to begin.
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Stops the child on purpose (idle, eviction, shutdown); it is not restarted. */
  async stop(reason: string): Promise<void> {
    clearTimeout(this.#retryTimer);
    this.#restartPending = false;
    const child = this.child;
    this.child = null;
    this.initResult = null;
    if (this.state !== "unavailable") this.state = "stopped";
    if (child) {
      this.options.log.info("stopping child", { child: child.label, reason });
      await child.stop(reason);
    }
  }

  /** Stops for good (shutdown, or the end of a per-session child's session). */
  async close(reason = "shutdown"): Promise<void> {
    this.#closed = true;
    await this.stop(reason);
    this.state = "stopped";
  }

  /** Sends a line to the ready child; false if there is none. */
  send(line: string): boolean {
    const child = this.child;
    if (!child || this.state !== "ready") return false;
    this.lastActivity = this.#now();
    child.send(line);
    return true;
  }

  async #start(restarted: boolean): Promise<void> {
    this.state = "starting";
    this.#startedAt = this.#now();
    const { spec, log } = this.options;
    let child: Child;
    try {
      child = Child.spawn(spec, log, this.#groups);
    } catch (error) {
      this.state = "stopped";
      this.#starting = null;
      this.lastError = (error as Error).message;
      log.error("cannot start server", { server: spec.server, error: this.lastError });
      throw error;
    }
    this.child = child;
    log.info("child started", { child: child.label, pid: child.pid, command: spec.command });
    const watch = this.#watchSlowStart(child);
    const result = await this.#initialize(child).finally(() => clearTimeout(watch()));
    this.#starting = null;
    if (result instanceof Error) {
      this.lastError = result.message;
      if (this.child === child && !child.stopping) child.stop(result.message).catch(() => {});
      throw result;
    }
    if (this.child !== child || this.#closed) {
      throw new StartError("the child was stopped during start-up");
    }
    child.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
    this.initResult = result;
    this.state = "ready";
    this.lastActivity = this.#now();
    log.info("child ready", {
      child: child.label,
      server_name: result.serverInfo.name,
      protocol: result.protocolVersion,
      seconds: Math.round((this.#now() - this.#startedAt) / 100) / 10,
    });
    this.events.onReady(restarted);
  }

  /** Sends the proxy's own `initialize`; resolves with the result, or the reason it failed. */
  async #initialize(child: Child): Promise<InitializeResult | Error> {
    const { spec } = this.options;
    let settle!: (result: InitializeResult | Error) => void;
    const answered = new Promise<InitializeResult | Error>((resolve) => settle = resolve);
    const initId = `mop-init-${child.id}`;
    child.onMessage = (message) => {
      if (!isRecord(message)) return;
      if (message.id === initId && !("method" in message)) {
        settle(parseInitializeResult(message, spec.server));
        return;
      }
      if (this.child === child && this.state === "ready") this.events.onMessage(message);
    };
    child.exited.then((info) => {
      settle(new StartError(describeExit(spec.server, info, "during start-up")));
      this.#onExit(child, info);
    });
    child.send(JSON.stringify({
      jsonrpc: "2.0",
      id: initId,
      method: "initialize",
      params: {
        protocolVersion: this.options.protocolVersion,
        capabilities: CAPABILITIES_OFFERED,
        clientInfo: this.options.clientInfo,
      },
    }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([
      answered,
      new Promise<Error>((resolve) => {
        const seconds = Math.round(this.options.initTimeoutMs / 1000);
        timer = setTimeout(
          () =>
            resolve(
              new StartError(
                `server "${spec.server}" did not answer initialize within ${seconds}s`,
              ),
            ),
          this.options.initTimeoutMs,
        );
      }),
    ]);
    clearTimeout(timer);
    return result;
  }

  /**
   * Logs "still starting" while the child has not answered `initialize`: first after
   * `slowStartMs` (5 s), then each time the wait doubles. Returns the current timer's getter.
   */
  #watchSlowStart(child: Child): () => ReturnType<typeof setTimeout> {
    const first = this.options.slowStartMs ?? SLOW_START_MS;
    const hint = slowStartHint(this.options.spec.command);
    let timer: ReturnType<typeof setTimeout>;
    const arm = (delay: number) => {
      timer = setTimeout(() => {
        if (this.child !== child || this.state !== "starting") return;
        const waited = this.#now() - this.#startedAt;
        this.options.log.info(`still starting (${hint})`, {
          child: child.label,
          seconds: Math.round(waited / 1000),
        });
        arm(Math.max(first, waited));
      }, delay);
    };
    arm(first);
    return () => timer;
  }

  #onExit(child: Child, info: ExitInfo): void {
    if (this.child !== child) return; // Stopped on purpose, or already replaced.
    this.child = null;
    this.initResult = null;
    const { log, spec } = this.options;
    const description = describeExit(spec.server, info, "");
    this.lastError = description;
    if (this.#closed) return;
    const now = this.#now();
    const window = this.options.crashWindowMs ?? 60_000;
    this.#exits = this.#exits.filter((t) => now - t < window);
    this.#exits.push(now);
    const delay = this.#backoff(this.#exits.length);
    const limit = this.options.crashLimit ?? 5;
    const wasReady = this.state === "ready";
    if (this.#exits.length >= limit) {
      this.state = "unavailable";
      this.#retryAt = now + delay;
      log.error("server marked unavailable after repeated exits", {
        server: spec.server,
        exits: this.#exits.length,
        window_s: window / 1000,
        retry_in_ms: delay,
        last: description,
      });
    } else {
      this.state = "restarting";
      log.warn("child exited; restarting", { child: child.label, exit: description, in_ms: delay });
    }
    if (wasReady) this.events.onExit(info, description);
    this.#scheduleRestart(delay);
  }

  #scheduleRestart(delay: number): void {
    clearTimeout(this.#retryTimer);
    this.#restartPending = true;
    this.#retryTimer = setTimeout(() => {
      if (!this.#restartPending || this.#closed) return;
      this.#restartPending = false;
      try {
        this.options.admit?.();
      } catch (error) {
        // No room under the child limits: the next request starts it, within the limits.
        this.state = "stopped";
        this.options.log.warn("restart postponed until the next request", {
          server: this.options.spec.server,
          reason: (error as Error).message,
        });
        return;
      }
      this.restarts++;
      this.#starting = this.#start(true).catch(() => {
        // #onExit has already scheduled the next attempt, or the spawn itself failed.
        if (this.state === "stopped" && !this.#closed) {
          this.#scheduleRestart(this.#backoff(this.#exits.length + 1));
        }
      });
    }, delay);
  }

  #backoff(exits: number): number {
    const base = this.options.restartDelayMs;
    const max = this.options.maxRestartDelayMs ?? 60_000;
    const exp = Math.min(max, base * 2 ** Math.max(0, exits - 1));
    const jitter = 1 + (this.options.random ?? Math.random)() * 0.25;
    return Math.round(Math.min(max, exp * jitter));
  }
}

function parseInitializeResult(
  message: Record<string, unknown>,
  server: string,
): InitializeResult | Error {
  if (isRecord(message.error)) {
    return new StartError(
      `server "${server}" refused initialize: ${String(message.error.message ?? "unknown error")}`,
    );
  }
  const result = message.result;
  if (
    !isRecord(result) || typeof result.protocolVersion !== "string" ||
    !isRecord(result.capabilities) ||
    !isRecord(result.serverInfo)
  ) {
    return new StartError(`server "${server}" sent a malformed initialize result`);
  }
  return result as InitializeResult;
}

/** Why a child may be slow to answer `initialize`, for the "still starting" log line. */
export function slowStartHint(command: string): string {
  const name = command.split(/[\\/]/).pop()!.replace(/\.(cmd|exe)$/i, "");
  switch (name) {
    case "npx":
    case "pnpx":
    case "bunx":
    case "uvx":
      return `${name} may be downloading the package on first use`;
    case "docker":
    case "podman":
      return `${name} may be pulling the image`;
    default:
      return "no answer to initialize yet";
  }
}

/** "server "x" exited (code 3): <last stderr line>" */
export function describeExit(server: string, info: ExitInfo, when: string): string {
  const how = info.signal ? `signal ${info.signal}` : `code ${info.code}`;
  const why = info.reason ?? info.lastStderr;
  return `server "${server}" exited${when ? ` ${when}` : ""} (${how})${why ? `: ${why}` : ""}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export { SpawnError };
