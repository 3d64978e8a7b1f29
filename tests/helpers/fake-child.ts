/**
 * A fake stdio child for the unit tests of the supervisor and the multiplexer, supplied through
 * `SupervisorOptions.spawn`: it records every line the proxy writes to it, answers `initialize`
 * as told, and lets the test write to its stdout (`emit`) or end it (`crash`).
 */
import type { ChildSpec, ExitInfo, SpawnChild, StdioChild } from "../../lib/children/child.ts";
import { SpawnError } from "../../lib/children/child.ts";

/** How the fake answers the proxy's `initialize`. */
export type InitBehaviour = "answer" | "refuse" | "malformed" | "silent" | "exit";

export interface FakeChildOptions {
  init?: InitBehaviour;
  /** The server capabilities in the InitializeResult. */
  capabilities?: Record<string, unknown>;
}

let nextId = 1;

export class FakeChild implements StdioChild {
  readonly id = nextId++;
  readonly pid = 4_000_000 + this.id;
  readonly exited: Promise<ExitInfo>;
  onMessage: (message: unknown) => void = () => {};
  /** Every message the proxy wrote to the child's stdin, parsed, in order. */
  readonly received: Record<string, unknown>[] = [];
  #stopping = false;
  #done = false;
  #resolve!: (info: ExitInfo) => void;

  constructor(readonly spec: ChildSpec, readonly options: FakeChildOptions = {}) {
    this.exited = new Promise((resolve) => this.#resolve = resolve);
  }

  get label(): string {
    return `${this.spec.server}#fake${this.id}`;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  get alive(): boolean {
    return !this.#done;
  }

  send(line: string): void {
    if (this.#done || this.#stopping) return;
    const message = JSON.parse(line) as Record<string, unknown>;
    this.received.push(message);
    if (message.method === "initialize") queueMicrotask(() => this.#initialize(message));
  }

  /** What the proxy sent after the handshake (initialize and notifications/initialized left out). */
  get traffic(): Record<string, unknown>[] {
    return this.received.filter((m) =>
      m.method !== "initialize" && m.method !== "notifications/initialized"
    );
  }

  /** The child writes `message` to its stdout. */
  emit(message: Record<string, unknown>): void {
    this.onMessage({ jsonrpc: "2.0", ...message });
  }

  /** The child exits on its own; resolves once the proxy has seen the exit. */
  async crash(code = 1, lastStderr = "boom"): Promise<void> {
    this.#end({ code, signal: null, lastStderr });
    await this.exited;
  }

  stop(reason: string): Promise<ExitInfo> {
    this.#stopping = true;
    this.#end({ code: null, signal: "SIGTERM", reason, lastStderr: "" });
    return this.exited;
  }

  #end(info: ExitInfo): void {
    if (this.#done) return;
    this.#done = true;
    this.#resolve(info);
  }

  #initialize(request: Record<string, unknown>): void {
    const id = request.id;
    switch (this.options.init ?? "answer") {
      case "answer":
        return this.emit({
          id,
          result: {
            protocolVersion: "2025-06-18",
            capabilities: this.options.capabilities ?? { tools: {} },
            serverInfo: { name: "fake", version: "1" },
          },
        });
      case "refuse":
        return this.emit({ id, error: { code: -32603, message: "no thanks" } });
      case "malformed":
        return this.emit({ id, result: { capabilities: {} } });
      case "exit":
        return void this.crash(3, "cannot start");
      case "silent":
        return;
    }
  }
}

/** A `spawn` hook that makes FakeChild processes; `fail` makes the next spawns throw. */
export function fakeSpawner(options: FakeChildOptions | ((n: number) => FakeChildOptions) = {}) {
  const children: FakeChild[] = [];
  const state = { fail: false };
  const spawn: SpawnChild = (spec) => {
    if (state.fail) throw new SpawnError(`command "${spec.command}" not found on PATH`);
    const child = new FakeChild(
      spec,
      typeof options === "function" ? options(children.length) : options,
    );
    children.push(child);
    return child;
  };
  return {
    spawn,
    children,
    state,
    get last(): FakeChild {
      return children[children.length - 1];
    },
  };
}
