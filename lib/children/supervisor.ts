/**
 * Keeps one logical backend alive: spawns its child, owns the child's `initialize`, restarts
 * it with exponential backoff after an exit, and marks the server unavailable in a crash loop.
 */
import type { Logger } from "../log.ts";
import { Child, type ChildSpec, type ExitInfo, type SpawnChild, type StdioChild } from "./child.ts";
import { ProcessGroups } from "./group.ts";
import {
  describeExit,
  initializeRequest,
  type InitializeResult,
  parseInitializeResult,
  restartDelay,
  slowStartHint,
  StartError,
  UnavailableError,
} from "./lifecycle.ts";
import { isRecord } from "../jsonrpc.ts";

export type BackendState = "stopped" | "starting" | "ready" | "restarting" | "unavailable";

export interface SupervisorOptions {
  spec: ChildSpec;
  /** The protocol version the proxy asks its children for. */
  protocolVersion: string;
  clientInfo: { name: string; version: string };
  initTimeoutMs: number;
  /** The first restart delay; it doubles with each exit in the crash window. */
  restartDelayMs: number;
  /** The longest restart delay (default 60 s). */
  maxRestartDelayMs?: number;
  /** This many exits within `crashWindowMs` mark the server unavailable (default 5). */
  crashLimit?: number;
  /** How long an exit counts towards the crash limit (default 60 s). */
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
  /** Starts a child process (default `Child.spawn`); unit tests supply a fake child. */
  spawn?: SpawnChild;
  /** The clock for crash windows, retry times and activity (default `Date.now`). */
  now?: () => number;
  /** The random source of the restart jitter, in [0, 1) (default `Math.random`). */
  random?: () => number;
}

export interface SupervisorEvents {
  /** Every message from the ready child except the answer to the proxy's own `initialize`. */
  onMessage(message: Record<string, unknown>): void;
  /** The child exited while it was serving (not on a requested stop); `description` says how. */
  onExit(description: string): void;
  /** A child finished `initialize`; `restarted` is true after an unexpected exit. */
  onReady(restarted: boolean): void;
}

const SLOW_START_MS = 5000;

/** One supervised child slot: at most one child at a time, restarted on failure. */
export class Supervisor {
  child: StdioChild | null = null;
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
  #state: BackendState = "stopped";
  /** Settles at the next state change: what `ready()` waits for while a restart is pending. */
  #stateChanged = Promise.withResolvers<void>();
  readonly #now: () => number;
  readonly #spawn: SpawnChild;
  readonly #groups: ProcessGroups;

  constructor(readonly options: SupervisorOptions, private readonly events: SupervisorEvents) {
    this.#now = options.now ?? Date.now;
    this.#spawn = options.spawn ?? Child.spawn;
    this.#groups = options.groups ?? new ProcessGroups(options.log);
    this.lastActivity = this.#now();
  }

  get state(): BackendState {
    return this.#state;
  }

  #setState(state: BackendState): void {
    if (state === this.#state) return;
    this.#state = state;
    const changed = this.#stateChanged;
    this.#stateChanged = Promise.withResolvers<void>();
    changed.resolve();
  }

  /** When the scheduled restart is due (the supervisor's clock); 0 when none was scheduled. */
  get retryAt(): number {
    return this.#retryAt;
  }

  /** How long the current child has been starting, in whole seconds; null when not starting. */
  get startingSeconds(): number | null {
    if (this.state !== "starting") return null;
    return Math.floor((this.#now() - this.#startedAt) / 1000);
  }

  get label(): string {
    return this.child?.label ?? this.options.spec.server;
  }

  /**
   * Resolves once a child is initialized (MCP lifecycle, initialization phase:
   * https://modelcontextprotocol.io/specification/2025-06-18/basic/lifecycle#initialization);
   * starts one if needed, waits for a scheduled restart, and throws UnavailableError in a
   * crash loop.
   */
  async ready(): Promise<StdioChild> {
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
      // Restarting (or a failed start still ending): wait until that changes.
      await this.#stateChanged.promise;
    }
  }

  /** Stops the child on purpose (idle, eviction, shutdown); it is not restarted. */
  async stop(reason: string): Promise<void> {
    clearTimeout(this.#retryTimer);
    this.#restartPending = false;
    const child = this.child;
    this.child = null;
    this.initResult = null;
    if (this.state !== "unavailable") this.#setState("stopped");
    if (child) {
      this.options.log.info("stopping child", { child: child.label, reason });
      await child.stop(reason);
    }
  }

  /** Stops for good (shutdown, or the end of a per-session child's session). */
  async close(reason = "shutdown"): Promise<void> {
    this.#closed = true;
    await this.stop(reason);
    this.#setState("stopped");
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
    this.#setState("starting");
    this.#startedAt = this.#now();
    const { spec, log } = this.options;
    let child: StdioChild;
    try {
      child = this.#spawn(spec, log, this.#groups);
    } catch (error) {
      this.#setState("stopped");
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
    this.#setState("ready");
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
  async #initialize(child: StdioChild): Promise<InitializeResult | Error> {
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
    child.send(initializeRequest(initId, this.options.protocolVersion, this.options.clientInfo));
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
  #watchSlowStart(child: StdioChild): () => ReturnType<typeof setTimeout> {
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

  #onExit(child: StdioChild, info: ExitInfo): void {
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
      this.#setState("unavailable");
      log.error("server marked unavailable after repeated exits", {
        server: spec.server,
        exits: this.#exits.length,
        window_s: window / 1000,
        retry_in_ms: delay,
        last: description,
      });
    } else {
      this.#setState("restarting");
      log.warn("child exited; restarting", { child: child.label, exit: description, in_ms: delay });
    }
    if (wasReady) this.events.onExit(description);
    this.#scheduleRestart(delay);
  }

  #scheduleRestart(delay: number): void {
    clearTimeout(this.#retryTimer);
    this.#restartPending = true;
    this.#retryAt = this.#now() + delay;
    this.#retryTimer = setTimeout(() => {
      if (!this.#restartPending || this.#closed) return;
      this.#restartPending = false;
      try {
        this.options.admit?.();
      } catch (error) {
        // No room under the child limits: the next request starts it, within the limits.
        this.#setState("stopped");
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
    return restartDelay(
      exits,
      this.options.restartDelayMs,
      this.options.maxRestartDelayMs ?? 60_000,
      this.options.random ?? Math.random,
    );
  }
}
