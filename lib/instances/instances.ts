/**
 * This instance among several behind one public URL: its id, its internal listener, its entry
 * and heartbeat in the shared store, and the peers it has seen. A request that belongs to
 * another instance's memory (a 2025-era session, a multi round-trip call) is forwarded to that
 * owner while its heartbeat is fresh; when the owner is gone the caller answers as the protocol
 * expects (404 for a session, an expired `requestState`).
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 */
import type { InstancesSettings } from "../config/instances-schema.ts";
import { formatHostPort } from "../config/hosts.ts";
import { type HttpServer, serveHttp } from "../http-server.ts";
import type { Logger } from "../log.ts";
import { forwardRequest } from "./forward.ts";
import { CLIENT_IP_HEADER, InstanceKeys, newInstanceId, PEER_HEADER } from "./tags.ts";

import type { InstanceRecord } from "../store/store.ts";

export type { InstanceRecord };

/** Where instances find each other: the shared store. */
export interface InstanceDirectory {
  putInstance(record: InstanceRecord): Promise<void>;
  deleteInstance(id: string): Promise<void>;
  listInstances(): Promise<InstanceRecord[]>;
}

/** Between heartbeats. */
export const HEARTBEAT_MS = 5_000;
/** An instance without a heartbeat for this long is gone. */
export const STALE_MS = 4 * HEARTBEAT_MS;
/** Entries of instances gone this long are removed from the store. */
const FORGET_MS = 3_600_000;

/** What reaches the application from the internal listener: a request another instance sent. */
export type InternalHandler = (
  req: Request,
  from: { instance: string; clientIp: string; peer: string },
) => Promise<Response>;

/** Where a request goes: its path as the owner matches it, the client's address, a read body. */
export interface ForwardTarget {
  path: string;
  clientIp: string;
  body?: string;
}

/** This instance: the owner tags it mints and the forwarding it does. */
export class Instances {
  readonly id = newInstanceId();
  /** The internal origin peers reach this instance at (known once started). */
  url = "";
  readonly #startedAt = Date.now();
  #peers = new Map<string, InstanceRecord>();
  #refreshing: Promise<void> | undefined;
  #server: HttpServer | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    private readonly settings: InstancesSettings,
    private readonly keys: InstanceKeys,
    private readonly directory: InstanceDirectory,
    private readonly log: Logger,
  ) {}

  static async create(
    settings: InstancesSettings,
    directory: InstanceDirectory,
    log: Logger,
  ): Promise<Instances> {
    return new Instances(settings, await InstanceKeys.create(settings.secret), directory, log);
  }

  /** Opens the internal listener, registers this instance and starts its heartbeat. */
  async start(
    handler: InternalHandler,
    options: { headerTimeoutMs: number; maxConnections: number },
  ): Promise<void> {
    this.#server = serveHttp({
      hostname: this.settings.listen.hostname,
      port: this.settings.listen.port,
      ...options,
      log: this.log,
    }, (req, remote) => this.#receive(req, remote.hostname, handler));
    const { hostname, port } = this.#server.addr;
    this.url = this.settings.url ?? `http://${formatHostPort({ hostname, port })}`;
    await this.#beat();
    this.#timer = setInterval(() => {
      this.#beat().catch((error) =>
        this.log.warn("cannot write this instance's heartbeat to the store", {
          error: String(error),
        })
      );
    }, HEARTBEAT_MS);
    this.log.info("instance registered", { instance: this.id, internal: this.url });
  }

  /** A new session id owned by this instance. */
  sessionId(): Promise<string> {
    return this.keys.sessionId(this.id);
  }

  /** The other instance owning `sessionId`; null when it is ours, untagged or forged. */
  async ownerOf(sessionId: string): Promise<string | null> {
    const owner = await this.keys.ownerOf(sessionId);
    return owner === this.id ? null : owner;
  }

  /**
   * Forwards `req` to the instance `owner`; null when that instance is gone (no fresh
   * heartbeat) or cannot be reached.
   */
  async forward(owner: string, req: Request, target: ForwardTarget): Promise<Response | null> {
    const peer = await this.#peer(owner);
    if (!peer) return null;
    const signature = await this.keys.signForward({
      from: this.id,
      to: owner,
      method: req.method,
      path: target.path,
      clientIp: target.clientIp,
    });
    const response = await forwardRequest(req, { ...target, origin: peer.url, signature });
    if (!response) {
      this.log.warn("cannot reach the instance owning a request; answering as if it were gone", {
        instance: owner,
        internal: peer.url,
        hint: "it crashed, or its host is missing from instances.peers (the derived --allow-net)",
      });
    }
    return response;
  }

  /** What `/healthz` on the admin listener shows: this instance and the peers seen. */
  status(now = Date.now()) {
    const peers = [...this.#peers.values()].filter((p) => p.id !== this.id).map((p) => ({
      id: p.id,
      url: p.url,
      lastSeenSeconds: Math.max(0, Math.round((now - p.seenAt) / 1000)),
      alive: now - p.seenAt < STALE_MS,
    }));
    return { id: this.id, internal: this.url, peers };
  }

  /** Leaves the directory (peers stop forwarding here at once) and closes the listener. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.directory.deleteInstance(this.id).catch(() => {});
    await this.#server?.shutdown();
  }

  async #receive(req: Request, remote: string, handler: InternalHandler): Promise<Response> {
    const url = new URL(req.url);
    const clientIp = req.headers.get(CLIENT_IP_HEADER) ?? "";
    const from = await this.keys.verifyForward(req.headers.get(PEER_HEADER), {
      to: this.id,
      method: req.method,
      path: url.pathname + url.search,
      clientIp,
    });
    if (!from) {
      this.log.warn("internal listener: a request without a valid instance signature refused", {
        peer: remote,
      });
      return new Response(JSON.stringify({ error: "forbidden" }), {
        status: 403,
        headers: { "content-type": "application/json" },
      });
    }
    return await handler(req, { instance: from, clientIp, peer: remote });
  }

  /** The live peer `id`, from the last heartbeat's list or, for a newcomer, the store. */
  async #peer(id: string): Promise<InstanceRecord | null> {
    const now = Date.now();
    let peer = this.#peers.get(id);
    if (!peer || now - peer.seenAt >= STALE_MS) {
      // Concurrent lookups (a client retrying a gone owner's session) share one store read.
      this.#refreshing ??= this.#refresh().catch(() => {}).finally(() => {
        this.#refreshing = undefined;
      });
      await this.#refreshing;
      peer = this.#peers.get(id);
    }
    return peer && now - peer.seenAt < STALE_MS ? peer : null;
  }

  async #beat(): Promise<void> {
    const now = Date.now();
    await this.directory.putInstance({
      id: this.id,
      url: this.url,
      startedAt: this.#startedAt,
      seenAt: now,
    });
    await this.#refresh(now);
  }

  async #refresh(now = Date.now()): Promise<void> {
    const list = await this.directory.listInstances();
    this.#peers = new Map(list.map((r) => [r.id, r]));
    for (const r of list) {
      if (now - r.seenAt > FORGET_MS) await this.directory.deleteInstance(r.id).catch(() => {});
    }
  }
}
