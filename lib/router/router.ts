/**
 * Maps each downstream session to the child that serves it (per-user, per-session or shared),
 * owns the downstream `initialize`, enforces the child limits, and stops idle children.
 */
import type { Logger } from "../log.ts";
import type { Limits, ServerConfig } from "../config/schema.ts";
import { UnavailableError } from "../children/lifecycle.ts";
import type { SpawnChild } from "../children/child.ts";
import { ProcessGroups } from "../children/group.ts";
import type { Downstream, Reply } from "./downstream.ts";
import { type Completion, Mux, SHUTTING_DOWN } from "./mux.ts";
import { Route } from "./route.ts";
import { makeRoom } from "./limits.ts";
import { LATEST_VERSION, negotiateVersion } from "../jsonrpc.ts";
import { Policy } from "../policy/policy.ts";
import { changedKinds } from "../policy/changes.ts";
import { announceFilterChange } from "./list-changes.ts";
import type { Refusal } from "./gate.ts";

/** The owner of a per-session server's spare child, before a session adopts it. */
const SPARE = "spare";
let nextSpare = 1;

/** Who is calling: the key children are routed by, plus what the logs may show. */
export interface Identity {
  /** Stable routing key: "anonymous", or "github:<numeric id>". */
  key: string;
  userId?: number;
  login?: string;
  clientId?: string;
}

/** A session bound to one server, as the router needs it. */
export interface RoutedSession extends Downstream {
  readonly server: ServerConfig;
  readonly identity: Identity;
}

export interface RouterOptions {
  servers: ServerConfig[];
  limits: Limits;
  log: Logger;
  version: string;
  onComplete?: (completion: Completion) => void;
  /** Told of each request a server's filters refused (the audit log). */
  onRefusal?: (refusal: Refusal) => void;
  /** Starts child processes (default: real ones); unit tests supply fake children. */
  spawn?: SpawnChild;
}

interface ServerEntry {
  config: ServerConfig;
  /** The server's filters, compiled once; null when it has none. */
  policy: Policy | null;
  /** The capabilities its children declared, as last seen ready (what sessions were told). */
  capabilities: Record<string, unknown> | null;
  muxes: Map<string, Mux>;
}

/** One child as /healthz shows it. */
export interface ChildStatus {
  state: string;
  /** Seconds since the start began, while starting. */
  startingSeconds?: number;
  pid: number | null;
  restarts: number;
  sessions: number;
  inFlight: number;
}

/** One server's children as /healthz shows them. */
export interface ServerStatus {
  mode: string;
  state: string;
  children: ChildStatus[];
}

/** The session-to-child map. */
export class Router {
  readonly servers = new Map<string, ServerEntry>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly #groups: ProcessGroups;

  constructor(readonly options: RouterOptions) {
    this.#groups = new ProcessGroups(options.log);
    for (const config of options.servers) {
      const policy = config.policy ? new Policy(config.policy) : null;
      this.servers.set(config.name, { config, policy, capabilities: null, muxes: new Map() });
    }
  }

  /** Starts the shared children, the per-session spares and the once-a-second sweep. */
  start(): void {
    for (const entry of this.servers.values()) {
      if (entry.config.mode === "shared") {
        const mux = this.#mux(entry, "*", "shared");
        this.#ready(mux).catch(() => {
          // Logged by the supervisor; requests will retry.
        });
      }
      if (entry.config.mode === "per-session") this.#replenish(entry);
    }
    this.#timer = setInterval(() => this.sweep(Date.now()), 1000);
  }

  /** The key that selects a session's child for its server's mode. */
  routeKey(session: RoutedSession): string {
    switch (session.server.mode) {
      case "shared":
        return "*";
      case "per-session":
        return `session:${session.id}`;
      default:
        return session.identity.key;
    }
  }

  /**
   * Makes sure the session's child is initialized and returns the InitializeResult to send
   * the client, with the protocol version negotiated (MCP lifecycle, version negotiation:
   * https://modelcontextprotocol.io/specification/2025-06-18/basic/lifecycle#version-negotiation).
   * Throws UnavailableError, SpawnError or StartError.
   */
  async initialize(
    session: RoutedSession,
    requestedVersion: unknown,
    supported: readonly string[],
  ): Promise<Record<string, unknown>> {
    const entry = this.#entry(session);
    const key = this.routeKey(session);
    if (entry.config.mode === "per-session") this.#adoptSpare(entry, key, session.identity.key);
    const mux = this.#mux(entry, key, session.identity.key);
    try {
      await this.#ready(mux);
    } catch (error) {
      // A per-session slot belongs to this one session: a failed start must not leave it
      // behind to be restarted for nobody.
      if (entry.config.mode === "per-session" && entry.muxes.get(key) === mux) {
        entry.muxes.delete(key);
        await mux.close("initialize failed");
      }
      throw error;
    }
    const init = mux.initResult!;
    const result: Record<string, unknown> = {
      protocolVersion: negotiateVersion(requestedVersion, supported),
      capabilities: init.capabilities,
      serverInfo: init.serverInfo,
    };
    if (init.instructions !== undefined) result.instructions = init.instructions;
    return result;
  }

  /** Attaches a session to its child after a successful initialize. */
  attach(session: RoutedSession): void {
    const entry = this.#entry(session);
    this.#mux(entry, this.routeKey(session), session.identity.key).sessions.add(session);
  }

  /**
   * The session's way to its child, looked up once for all the messages of one HTTP request
   * (the child is created, not started, when the session has none).
   */
  route(session: RoutedSession): Route {
    const mux = this.#mux(this.#entry(session), this.routeKey(session), session.identity.key);
    return new Route(session, mux, this.#readyMux);
  }

  /** Relays one downstream request (see `Route.request`). */
  request(session: RoutedSession, message: Record<string, unknown>, reply: Reply): void {
    this.route(session).request(message, reply);
  }

  /** Forgets a session; a per-session child ends with it. */
  async detach(session: RoutedSession): Promise<void> {
    const entry = this.servers.get(session.server.name);
    if (!entry) return;
    const key = this.routeKey(session);
    const mux = entry.muxes.get(key);
    if (!mux) return;
    mux.detach(session);
    if (session.server.mode === "per-session") {
      entry.muxes.delete(key);
      await mux.close("session ended");
    }
  }

  /**
   * A reloaded config's filters, for every child from its next request on (sessions stay); the
   * sessions of a server whose filters changed for a kind are told that kind's list changed.
   */
  reloadPolicies(servers: ServerConfig[]): void {
    for (const config of servers) {
      const entry = this.servers.get(config.name);
      if (!entry) continue;
      const kinds = changedKinds(entry.policy?.rules, config.policy);
      entry.policy = config.policy ? new Policy(config.policy) : null;
      for (const mux of entry.muxes.values()) {
        mux.usePolicy(entry.policy);
        announceFilterChange(mux, kinds, entry.capabilities);
      }
    }
  }

  /** Times out requests and stops idle children. */
  sweep(now: number): void {
    for (const entry of this.servers.values()) {
      const idle = entry.config.idleTimeoutMs;
      // Warm shared and per-user children, and per-session spares, outlive idle periods.
      const keepWarm = entry.config.warm > 0 && entry.config.mode !== "per-session";
      for (const mux of entry.muxes.values()) {
        mux.sweep(now);
        const sup = mux.supervisor;
        if (
          idle > 0 && !keepWarm && mux.owner !== SPARE && sup.state === "ready" &&
          mux.inFlight === 0 && now - sup.lastActivity >= idle
        ) {
          sup.stop("idle timeout").catch(() => {});
        }
      }
    }
  }

  /** Every child, by server, for /healthz and the gauges of /metrics. */
  status(): Record<string, ServerStatus> {
    const out: Record<string, ServerStatus> = {};
    for (const [name, entry] of this.servers) {
      const children = [...entry.muxes.values()].map((mux): ChildStatus => {
        const startingSeconds = mux.supervisor.startingSeconds;
        return {
          state: publicState(mux.supervisor.state),
          ...(startingSeconds === null ? {} : { startingSeconds }),
          pid: mux.supervisor.child?.pid ?? null,
          restarts: mux.supervisor.restarts,
          sessions: mux.sessions.size,
          inFlight: mux.inFlight,
        };
      });
      out[name] = {
        mode: entry.config.mode,
        state: summaryState(children.map((c) => c.state)),
        children,
      };
    }
    return out;
  }

  /**
   * Stops every child (their whole process groups) and waits for them. Open calls are answered
   * with "proxy shutting down" at once, before the first await, so they reach their streams
   * before those close; then every process group ever spawned that may still have members
   * (a crashed child's orphans) is swept.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    const muxes = [...this.servers.values()].flatMap((entry) => [...entry.muxes.values()]);
    for (const mux of muxes) mux.shutdown();
    await Promise.allSettled(muxes.map((mux) => mux.close()));
    await this.#groups.sweep();
  }

  #entry(session: RoutedSession): ServerEntry {
    const entry = this.servers.get(session.server.name);
    if (!entry) throw new Error(`unknown server ${session.server.name}`);
    return entry;
  }

  #mux(entry: ServerEntry, key: string, owner: string): Mux {
    const existing = entry.muxes.get(key);
    if (existing) return existing;
    const { config } = entry;
    const mux: Mux = new Mux(owner, {
      spec: {
        server: config.name,
        command: config.command,
        args: config.args,
        env: config.env,
        cwd: config.cwd,
        maxLineBytes: this.options.limits.maxMessageOutBytes,
      },
      protocolVersion: LATEST_VERSION,
      clientInfo: { name: "mcp-oauth-proxy", version: this.options.version },
      initTimeoutMs: config.requestTimeoutMs,
      restartDelayMs: config.restartDelayMs,
      log: this.options.log,
      requestTimeoutMs: config.requestTimeoutMs,
      maxInFlight: config.maxInFlight,
      shared: config.mode === "shared",
      logArguments: config.logArguments,
      onComplete: this.options.onComplete,
      policy: entry.policy,
      onRefusal: this.options.onRefusal,
      groups: this.#groups,
      spawn: this.options.spawn,
      admit: () => this.#makeRoom(mux),
    });
    entry.muxes.set(key, mux);
    return mux;
  }

  /**
   * Hands a ready spare child to a new per-session session (so it starts at once) and starts
   * another spare in its place.
   */
  #adoptSpare(entry: ServerEntry, key: string, owner: string): void {
    if (entry.muxes.has(key)) return;
    for (const [spareKey, mux] of entry.muxes) {
      if (mux.owner !== SPARE || mux.supervisor.state !== "ready") continue;
      entry.muxes.delete(spareKey);
      mux.owner = owner;
      entry.muxes.set(key, mux);
      break;
    }
    this.#replenish(entry);
  }

  /** Starts spare children until a per-session server has `warm` of them. */
  #replenish(entry: ServerEntry): void {
    if (this.#closed) return;
    let spares = 0;
    for (const mux of entry.muxes.values()) if (mux.owner === SPARE) spares++;
    for (; spares < entry.config.warm; spares++) {
      const mux = this.#mux(entry, `spare:${nextSpare++}`, SPARE);
      this.#ready(mux).catch(() => {
        // Logged by the supervisor; a new session then starts its own child.
      });
    }
  }

  readonly #readyMux = (mux: Mux) => this.#ready(mux);

  /** Starts a stopped child (the supervisor asks `#makeRoom` first) and waits until it is ready. */
  async #ready(mux: Mux): Promise<void> {
    if (this.#closed) throw new UnavailableError(SHUTTING_DOWN, 5000);
    try {
      await mux.supervisor.ready();
      const entry = this.servers.get(mux.options.spec.server);
      if (entry && mux.initResult) entry.capabilities = mux.initResult.capabilities;
    } catch (error) {
      // A start cut short by the shutdown says so, not "exited during start-up (SIGTERM)".
      if (this.#closed) throw new UnavailableError(SHUTTING_DOWN, 5000);
      throw error;
    }
  }

  /**
   * Makes room under the child limits for a child about to start, stopping the least recently
   * used idle ones (see `makeRoom`); throws UnavailableError when too few are idle.
   */
  #makeRoom(starting: Mux): void {
    const live: Mux[] = [];
    for (const entry of this.servers.values()) {
      for (const mux of entry.muxes.values()) {
        const state = mux.supervisor.state;
        if (mux !== starting && state !== "stopped" && state !== "unavailable") live.push(mux);
      }
    }
    const room = makeRoom(starting.owner, live, this.options.limits);
    for (const { child, limit } of room.stop) {
      this.options.log.info("stopping the least recently used child to stay within limits", {
        child: child.supervisor.label,
        limit,
      });
      child.supervisor.stop(`limits.${limit}`).catch(() => {});
    }
    if (room.refused) {
      throw new UnavailableError(
        `too many children running (limits.${room.refused}); every one is starting or busy, try again shortly`,
        5000,
      );
    }
  }
}

function publicState(state: string): string {
  switch (state) {
    case "ready":
      return "running";
    default:
      return state;
  }
}

function summaryState(states: string[]): string {
  if (states.includes("unavailable")) return "unavailable";
  if (states.includes("restarting")) return "restarting";
  if (states.includes("running")) return "running";
  if (states.includes("starting")) return "starting";
  return "idle";
}
