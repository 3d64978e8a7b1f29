/**
 * Every way out of `serve` runs the one shutdown that stops the children (and their process
 * groups): SIGINT and SIGTERM, the server ending by itself, an uncaught error and an unhandled
 * rejection. Without this, an error thrown anywhere ends the process with Deno's default
 * handler and leaves every child and grandchild running.
 */
import type { Logger } from "./log.ts";

export interface Stoppable {
  shutdown(): Promise<void>;
  log: Logger;
}

export interface LifecycleOptions {
  /** Exits the process (Deno.exit; tests pass a recorder). */
  exit?: (code: number) => void;
  /** Writes out queued log lines, within the given time. */
  flush?: (ms: number) => Promise<void>;
  /** Time the shutdown may take before the process exits anyway. */
  deadlineMs?: number;
}

/** Children get 5 s between SIGTERM and SIGKILL; the rest of the shutdown takes far less. */
const DEADLINE_MS = 15_000;

/** Runs the shutdown once, whichever way out comes first, then exits. */
export class Lifecycle {
  #target: Stoppable | undefined;
  #pending: { code: number; reason: string } | undefined;
  #stopping: Promise<void> | undefined;
  readonly #exit: (code: number) => void;
  readonly #flush: (ms: number) => Promise<void>;
  readonly #deadlineMs: number;

  constructor(options: LifecycleOptions = {}) {
    this.#exit = options.exit ?? Deno.exit;
    this.#flush = options.flush ?? (() => Promise.resolve());
    this.#deadlineMs = options.deadlineMs ?? DEADLINE_MS;
  }

  /**
   * Listens for SIGINT and SIGTERM (unless `signals` is false), uncaught errors and unhandled
   * rejections; returns a function that removes the listeners.
   */
  install(options: { signals?: boolean } = {}): () => void {
    const removers: Array<() => void> = [];
    if (options.signals !== false) {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        const onSignal = () => void this.stop(0, `received ${signal}`);
        Deno.addSignalListener(signal, onSignal);
        removers.push(() => Deno.removeSignalListener(signal, onSignal));
      }
    }
    const onError = (event: ErrorEvent) => {
      event.preventDefault();
      this.stop(1, "uncaught error", event.error);
    };
    const onRejection = (event: PromiseRejectionEvent) => {
      event.preventDefault();
      this.stop(1, "unhandled promise rejection", event.reason);
    };
    globalThis.addEventListener("error", onError);
    globalThis.addEventListener("unhandledrejection", onRejection);
    removers.push(() => globalThis.removeEventListener("error", onError));
    removers.push(() => globalThis.removeEventListener("unhandledrejection", onRejection));
    return () => removers.forEach((remove) => remove());
  }

  /** The proxy is up: a stop requested while it started is carried out now. */
  started(target: Stoppable): void {
    this.#target = target;
    if (this.#pending) this.stop(this.#pending.code, this.#pending.reason);
  }

  /** Shuts down (once) and exits with `code`; before `started`, remembers the request. */
  stop(code: number, reason: string, error?: unknown): Promise<void> {
    const target = this.#target;
    if (!target) {
      if (error !== undefined) console.error(`error: ${reason}: ${describe(error)}`);
      this.#pending ??= { code, reason };
      return Promise.resolve();
    }
    if (error !== undefined) target.log.error(reason, { error: describe(error) });
    return this.#stopping ??= (async () => {
      target.log.info("stopping", { reason });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<boolean>((resolve) =>
        timer = setTimeout(() => resolve(true), this.#deadlineMs)
      );
      const done = target.shutdown().then(() => false, (e) => {
        target.log.error("shutdown failed", { error: describe(e) });
        return false;
      });
      if (await Promise.race([done, late])) {
        target.log.error("shutdown did not finish in time; exiting", { ms: this.#deadlineMs });
        code ||= 1;
      }
      clearTimeout(timer);
      await this.#flush(2000);
      this.#exit(code);
    })();
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}
