/**
 * The merged endpoint's side of one downstream session: a part per server (each routed to that
 * server's child like a session of its own), the lists merged from theirs, and every request,
 * notification and answer sent to the part it belongs to.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle
 */
import type { ServerConfig } from "../../config/schema.ts";
import type { MergedSettings } from "../../config/merged-schema.ts";
import type { Logger } from "../../log.ts";
import type { Identity, Router } from "../../router/router.ts";
import type { Reply } from "../../router/downstream.ts";
import {
  errorBody,
  ErrorCode,
  isRecord,
  type JsonRpcId,
  logRank,
  negotiateVersion,
  resultBody,
  STREAMABLE_VERSIONS,
} from "../../jsonrpc.ts";
import { accessChange, Part, type PartOwner } from "./part.ts";
import { Catalog, key, parse, rewriteResult, type Target } from "./catalog.ts";
import {
  combineInstructions,
  LIST_SHAPES,
  ListChanges,
  type ListKind,
  type ListMethod,
  unionCapabilities,
} from "./union.ts";

export type { Target } from "./catalog.ts";

/** What a merged session needs of the proxy. */
export interface MergedHost {
  router: Router;
  log: Logger;
  settings: MergedSettings;
  version: string;
  /**
   * The servers the identity may use now (their own `allow`), in configuration order; asked on
   * every request of a session, so it answers from the allow-lists' caches.
   */
  servers(identity: Identity): Promise<ServerConfig[]>;
}

/** The downstream session a merged session serves (its standalone stream and client). */
export interface MergedDownstream {
  readonly id: string;
  readonly identity: Identity;
  readonly capabilities: { sampling: boolean; elicitation: boolean; roots: boolean };
  logLevel: number;
  /** A message for the client; `server` names the server whose child sent it, if one did. */
  notify(text: string, server?: string): void;
  /** A new child of `part` is ready (see `Downstream.childReady`). */
  childReady?(part: Part, pid: number): void;
}

export class MergedSession implements PartOwner {
  readonly parts: Part[];
  readonly catalog: Catalog;
  /** Downstream ids of the children's requests to the client, to route the answers back. */
  readonly #serverRequests = new Map<string, Part>();
  /** The client's requests in flight at a part, to route its cancellations. */
  readonly #inFlight = new Map<string, Part>();
  readonly #changes = new ListChanges((text) => this.downstream.notify(text));
  /** The servers as configured, by name (a part's may be routed differently). */
  readonly #configs: Map<string, ServerConfig>;
  readonly #routeAs: (server: ServerConfig) => ServerConfig;
  /** The access check in progress, which the requests arriving meanwhile share. */
  #checking: Promise<void> | undefined;

  /** A merged session over the servers the downstream's identity may use. */
  static async open(
    host: MergedHost,
    downstream: MergedDownstream,
    routeAs?: (server: ServerConfig) => ServerConfig,
  ): Promise<MergedSession> {
    const servers = await host.servers(downstream.identity);
    return new MergedSession(host, downstream, servers, routeAs);
  }

  /**
   * @param servers the servers it merges, in configuration order
   * @param routeAs the server as its part is routed (the sessionless lane routes a per-session
   * server per person)
   */
  constructor(
    private readonly host: MergedHost,
    readonly downstream: MergedDownstream,
    servers: ServerConfig[],
    routeAs: (server: ServerConfig) => ServerConfig = (server) => server,
  ) {
    this.#configs = new Map(servers.map((server) => [server.name, server]));
    this.#routeAs = routeAs;
    this.parts = servers.map((server) => new Part(this, routeAs(server)));
    const revive = () => this.revive();
    this.catalog = new Catalog(host.router, host.settings.separator, this.parts, revive);
  }

  get id(): string {
    return this.downstream.id;
  }

  /** A server of this session as configured. */
  configOf(server: string): ServerConfig {
    return this.#configs.get(server)!;
  }

  get identity(): Identity {
    return this.downstream.identity;
  }

  get capabilities(): { sampling: boolean; elicitation: boolean; roots: boolean } {
    return this.downstream.capabilities;
  }

  /**
   * Initializes every part's child and answers with the union of their capabilities and their
   * instructions combined (MCP lifecycle, initialization). A child that fails to start is left
   * out until a later list finds it running; when every one fails, the first error is thrown.
   */
  async initialize(
    requestedVersion: unknown,
    supported: readonly string[] = STREAMABLE_VERSIONS,
  ): Promise<Record<string, unknown>> {
    const results = await Promise.allSettled(this.parts.map((part) => this.#initPart(part)));
    const failed = results.find((r) => r.status === "rejected");
    if (failed && !this.parts.some((p) => p.init)) throw (failed as PromiseRejectedResult).reason;
    const capabilities = unionCapabilities(this.parts.map((p) => p.serverCapabilities));
    this.#changes.declared = capabilities;
    const result: Record<string, unknown> = {
      protocolVersion: negotiateVersion(requestedVersion, supported),
      capabilities,
      serverInfo: { name: "mcp-oauth-proxy (merged)", version: this.host.version },
    };
    const instructions = combineInstructions(
      this.parts.map((p) => ({ server: p.name, instructions: p.init?.instructions })),
    );
    if (instructions !== undefined) result.instructions = instructions;
    return result;
  }

  async #initPart(part: Part): Promise<void> {
    try {
      part.init = await this.host.router.initialize(part, undefined, STREAMABLE_VERSIONS);
      part.down = false;
    } catch (error) {
      this.host.log.warn("merged endpoint: a server did not start; left out for now", {
        server: part.name,
        session: this.id.slice(0, 8),
        error: (error as Error).message,
      });
      throw error;
    }
  }

  /** Attaches every initialized part to its child (after a successful initialize). */
  attach(): void {
    for (const part of this.parts) if (part.init) this.host.router.attach(part);
  }

  /** Detaches every part (the session ended); per-session children end with it. */
  async detach(): Promise<void> {
    await Promise.allSettled(this.parts.map((part) => this.host.router.detach(part)));
  }

  /** Always true: each request waits for its own part's child. */
  readonly ready = true;

  prepare(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Serves one downstream request: the methods about the whole endpoint here (ping,
   * logging/setLevel, the lists), the others at the part that owns the name or URI they carry.
   */
  request(message: Record<string, unknown>, reply: Reply): void {
    const id = message.id as JsonRpcId;
    const method = message.method as string;
    switch (method) {
      case "ping":
        return reply.end(resultBody(id, {}));
      case "initialize":
        return reply.end(
          errorBody(id, ErrorCode.InvalidRequest, "the session is already initialized"),
        );
      case "logging/setLevel":
        return reply.end(this.#setLevel(id, message.params));
    }
    const failed = (e: Error) => reply.end(errorBody(id, ErrorCode.InternalError, e.message));
    this.recheck().then(() => {
      if (method in LIST_SHAPES) {
        return this.#answerList(id, method as ListMethod, message.params, reply);
      }
      this.catalog.target(message).then((target) => {
        if (typeof target === "string") reply.end(target);
        else this.#forward(target, reply);
      }, failed);
    }, failed);
  }

  /**
   * Asks again which servers the person may use (on every request, as `/mcp/<name>` asks on
   * every use, and at once after a reload): a server they may no longer use is left out as if
   * its child were gone, one they may use again comes back, each with the lists' change
   * notifications. Concurrent requests share one check.
   */
  recheck(): Promise<void> {
    return this.#checking ??= this.#recheck().finally(() => this.#checking = undefined);
  }

  async #recheck(): Promise<void> {
    const allowed = await this.host.servers(this.identity);
    const change = accessChange(this.parts, allowed.map((server) => server.name));
    for (const part of this.parts) {
      if (change.bar.includes(part.name)) {
        part.barred = true;
        this.catalog.forget(part.name);
        this.#dropServerRequests(part);
      } else if (change.restore.includes(part.name)) part.barred = false;
      else continue;
      this.#changes.ofServer(part.serverCapabilities);
    }
    for (const server of allowed.filter((s) => change.add.includes(s.name))) {
      this.#configs.set(server.name, server);
      const part = new Part(this, this.#routeAs(server));
      part.logLevel = this.downstream.logLevel;
      this.parts.push(part);
    }
    if (change.add.length > 0) await this.revive();
  }

  /** A downstream notification: cancellations go to the part serving the request. */
  notification(message: Record<string, unknown>): void {
    const method = message.method;
    if (method === "notifications/cancelled") {
      const params = message.params;
      const part = isRecord(params) ? this.#inFlight.get(key(params.requestId)) : undefined;
      if (part) this.host.router.route(part).notification(message);
      return;
    }
    if (method === "notifications/roots/list_changed") {
      for (const part of this.parts) {
        if (part.live) this.host.router.route(part).notification(message);
      }
    }
  }

  /** A downstream answer to a child's request goes to the part whose child asked. */
  response(message: Record<string, unknown>): void {
    const id = key(message.id);
    const part = this.#serverRequests.get(id);
    if (!part) return;
    this.#serverRequests.delete(id);
    this.host.router.route(part).response(message);
  }

  #setLevel(id: JsonRpcId, params: unknown): string {
    const rank = logRank(isRecord(params) ? params.level : undefined);
    if (rank < 0) return errorBody(id, ErrorCode.InvalidParams, "unknown log level");
    this.downstream.logLevel = rank;
    for (const part of this.parts) part.logLevel = rank;
    return resultBody(id, {});
  }

  #answerList(id: JsonRpcId, method: ListMethod, params: unknown, reply: Reply): void {
    if (isRecord(params) && params.cursor !== undefined) {
      reply.end(errorBody(id, ErrorCode.InvalidParams, "invalid cursor"));
      return;
    }
    this.catalog.list(method).then(
      (items) => reply.end(resultBody(id, { [LIST_SHAPES[method].field]: items })),
      (error) => reply.end(errorBody(id, ErrorCode.InternalError, (error as Error).message)),
    );
  }

  /** Starts the parts whose child did not start at initialize, or that are new; lists change. */
  async revive(): Promise<void> {
    const missing = this.parts.filter((p) => p.init === null && !p.barred);
    await Promise.allSettled(
      missing.map((part) =>
        part.starting ??= this.#initPart(part).then(() => {
          this.host.router.attach(part);
          this.#changes.ofServer(part.serverCapabilities);
        }).finally(() => part.starting = undefined)
      ),
    );
  }

  /**
   * Relays a request to its part: the child's requests to the client on the way are noted so
   * their answers find the child again; the final answer may be rewritten.
   */
  #forward({ part, message, rewrite }: Target, reply: Reply): void {
    const id = key(message.id);
    this.#inFlight.set(id, part);
    const relay: Reply = {
      streaming: reply.streaming,
      get waiting() {
        return reply.waiting;
      },
      send: (text) => {
        this.#noteServerRequest(part, text);
        reply.send(text);
      },
      end: (text) => {
        if (this.#inFlight.get(id) === part) this.#inFlight.delete(id);
        reply.end(rewrite ? rewriteResult(text, rewrite) : text);
      },
    };
    const route = this.host.router.route(part);
    if (route.ready) {
      route.request(message, relay);
      return;
    }
    route.prepare().then(
      () => route.request(message, relay),
      (error) =>
        relay.end(errorBody(message.id as JsonRpcId, ErrorCode.InternalError, error.message)),
    );
  }

  #noteServerRequest(part: Part, text: string): void {
    const message = parse(text);
    if (isRecord(message) && typeof message.method === "string" && message.id !== undefined) {
      this.#serverRequests.set(key(message.id), part);
    }
  }

  /** A session-wide message of a part's child, as the client should see it. */
  fromChild(part: Part, text: string): void {
    if (part.barred) return;
    const message = parse(text);
    if (!isRecord(message) || typeof message.method !== "string") return;
    const params = isRecord(message.params) ? message.params : undefined;
    const changed = /^notifications\/(tools|prompts|resources)\/list_changed$/.exec(message.method);
    if (changed) {
      if (changed[1] === "resources") this.catalog.changed();
      this.#changes.add(changed[1] as ListKind);
      return;
    }
    if (message.method === "notifications/resources/updated" && typeof params?.uri === "string") {
      params.uri = this.catalog.updatedUri(part.name, params.uri);
    } else if (message.method === "notifications/message" && params) {
      params.logger = typeof params.logger === "string"
        ? `${part.name}/${params.logger}`
        : part.name;
    } else if (message.method === "notifications/cancelled" && params) {
      this.#serverRequests.delete(key(params.requestId));
    }
    this.downstream.notify(JSON.stringify(message), part.name);
  }

  childReady(part: Part, pid: number): void {
    this.downstream.childReady?.(part, pid);
  }

  childGone(part: Part): void {
    this.host.log.info("merged endpoint: a server's child exited; its items are withdrawn", {
      server: part.name,
      session: this.id.slice(0, 8),
    });
    this.catalog.forget(part.name);
    this.#dropServerRequests(part);
    if (!part.barred) this.#changes.ofServer(part.serverCapabilities);
  }

  childBack(part: Part): void {
    if (!part.barred) this.#changes.ofServer(part.serverCapabilities);
  }

  #dropServerRequests(part: Part): void {
    for (const [id, owner] of this.#serverRequests) {
      if (owner === part) this.#serverRequests.delete(id);
    }
  }
}
