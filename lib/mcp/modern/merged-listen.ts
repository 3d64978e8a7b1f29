/**
 * `subscriptions/listen` on the merged endpoint `/mcp` (MCP 2026-07-28): one stream that listens
 * on every server the identity may use, through a merged session of its own (a part per server,
 * attached to that server's child as a 2025 session's part is). It carries the list changes of
 * any child (once per kind), a child's exit and return as list changes, and the updates of the
 * resources the filter names, each named as the client named it (the `mcp-merged://<server>/`
 * form of a URI two servers share). The children are subscribed on the stream's behalf, counted
 * with the single-server listeners of the same child, and unsubscribed when the stream closes.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/subscriptions
 */
import type { ServerConfig } from "../../config/schema.ts";
import type { Identity } from "../../router/router.ts";
import { ErrorCode, isRecord } from "../../jsonrpc.ts";
import { rpcError } from "../http.ts";
import type { McpService } from "../service.ts";
import type { Part } from "../merged/part.ts";
import { MergedSession } from "../merged/session.ts";
import { mergedServerConfig } from "../merged/server-config.ts";
import { admit, askResources, honored, Listener, type Listening } from "./listen.ts";
import type { ModernRequest } from "./validate.ts";

let next = 1;

/** A resource the stream listens to: its part, its URI at the child and the client's name. */
export interface Watched {
  part: Part;
  uri: string;
  client: string;
}

/**
 * Opens a listen stream on `/mcp`. `routeAs` is how the sessionless lane routes a server (a
 * per-session one per person).
 */
export async function listenMerged(
  svc: McpService,
  identity: Identity,
  request: ModernRequest,
  routeAs: (server: ServerConfig) => ServerConfig,
): Promise<Listener | Response> {
  const { id } = request;
  const host = svc.merged;
  if (!host) return rpcError(404, id, ErrorCode.MethodNotFound, "method not found");
  const admitted = admit(svc, id, request.params.notifications);
  if (admitted instanceof Response) return admitted;
  const { filter, listening } = admitted;
  let stream: MergedStream | null = null;
  const session = await MergedSession.open(host, {
    id: `listen-merged-${next++}`,
    identity,
    capabilities: { sampling: false, elicitation: false, roots: false },
    logLevel: Number.POSITIVE_INFINITY,
    notify: (text, server) => stream?.deliver(text, server),
    childReady: (part, pid) => stream?.renew(part, pid),
  }, routeAs);
  let init: Record<string, unknown>;
  try {
    init = await session.initialize(undefined);
  } catch (error) {
    await session.detach();
    return rpcError(200, id, ErrorCode.InternalError, (error as Error).message);
  }
  // A listen stream takes no log message.
  for (const part of session.parts) part.logLevel = Number.POSITIVE_INFINITY;
  const wanted = honored(filter, init.capabilities as Record<string, unknown>);
  const watched = wanted.resourceSubscriptions
    ? await resolveAll(session, wanted.resourceSubscriptions)
    : [];
  if (watched.length > 0) wanted.resourceSubscriptions = watched.map((w) => w.client);
  else delete wanted.resourceSubscriptions;
  stream = new MergedStream(svc, session, listening, watched);
  const listener = new Listener({
    id,
    server: mergedServerConfig(),
    identity,
    filter: wanted,
    serverInfo: init.serverInfo as Record<string, unknown>,
    registry: svc.registry,
    onClose: () => stream!.close(),
  });
  stream.listener = listener;
  listening.open++;
  if (Object.keys(wanted).length === 0) {
    listener.end(); // nothing the children can deliver
    return listener;
  }
  // Those whose child did not start too, so they hear of it when it does (see `renew`).
  for (const part of session.parts) svc.router.attach(part);
  stream.subscribe();
  // A reload that changes who may use which server reaches the stream as it reaches sessions.
  svc.mergedStreams.add(session);
  return listener;
}

/**
 * The resources a stream can listen to, of `uris` as the client named them: each routed to the
 * server that lists it (as a read would be), when that server's child takes subscriptions.
 * A URI no server has, or several do, is not honored.
 */
async function resolveAll(session: MergedSession, uris: string[]): Promise<Watched[]> {
  const out: Watched[] = [];
  const seen = new Set<string>();
  for (const client of uris) {
    const target = await session.catalog.target({
      jsonrpc: "2.0",
      id: "listen",
      method: "resources/subscribe",
      params: { uri: client },
    });
    if (typeof target === "string") continue;
    const resources = target.part.serverCapabilities.resources;
    if (!isRecord(resources) || resources.subscribe !== true) continue;
    const uri = (target.message.params as Record<string, unknown>).uri as string;
    const key = `${target.part.name}\n${uri}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ part: target.part, uri, client });
  }
  return out;
}

/** A watched resource by its server and its name as the client named it. */
function watchKey(server: string, client: string): string {
  return `${server}\n${client}`;
}

/** The children's side of one open stream: what it delivers and the subscriptions it holds. */
export class MergedStream {
  listener: Listener | null = null;
  readonly #watched: Map<string, Watched>;
  #closed = false;

  constructor(
    private readonly svc: McpService,
    private readonly session: MergedSession,
    private readonly listening: Listening,
    watched: Watched[],
  ) {
    this.#watched = new Map(watched.map((w) => [watchKey(w.part.name, w.client), w]));
  }

  /**
   * A message of the merged session for the client: a resource update only for a watched
   * resource (the session names it as the client subscribed, see `SubscribedUris`); the
   * listener's filter decides the rest.
   */
  deliver(text: string, server?: string): void {
    if (!this.listener || this.#closed) return;
    const updated = text.includes('"notifications/resources/updated"') ? updatedUri(text) : null;
    if (
      updated !== null && (server === undefined || !this.#watched.has(watchKey(server, updated)))
    ) {
      return;
    }
    this.listener.notify(text);
  }

  /** Subscribes the children to the watched resources no other listener of theirs holds. */
  subscribe(): void {
    for (const [part, uris] of this.#byPart()) {
      const fresh = this.listening.resources.add(this.#child(part), uris);
      askResources(this.svc.router, part, "resources/subscribe", fresh);
    }
  }

  /**
   * A new child serves `part`: it is subscribed again (once for all its listeners); a server
   * whose child had not started when the stream opened joins now, with a list change.
   */
  renew(part: Part, pid: number): void {
    if (this.#closed) return;
    if (part.init === null) this.session.revive().catch(() => {});
    const uris = this.listening.resources.renew(this.#child(part), pid);
    askResources(this.svc.router, part, "resources/subscribe", uris);
  }

  /** The stream ended: its parts leave their children, which drop what no one else holds. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.listening.open--;
    this.svc.mergedStreams.delete(this.session);
    // Detached first, so the unsubscriptions are not cancelled with the parts' requests.
    this.session.detach().catch(() => {});
    for (const [part, uris] of this.#byPart()) {
      const gone = this.listening.resources.remove(this.#child(part), uris);
      askResources(this.svc.router, part, "resources/unsubscribe", gone);
    }
  }

  #byPart(): Map<Part, string[]> {
    const out = new Map<Part, string[]>();
    for (const { part, uri } of this.#watched.values()) {
      const list = out.get(part);
      if (list) list.push(uri);
      else out.set(part, [uri]);
    }
    return out;
  }

  /** The child of a part, as the single-server listeners name it. */
  #child(part: Part): string {
    return `${part.name}\n${this.svc.router.routeKey(part)}`;
  }
}

/** The URI of a resource update, or null for any other message. */
function updatedUri(text: string): string | null {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(message) || message.method !== "notifications/resources/updated") return null;
  const params = message.params;
  return isRecord(params) && typeof params.uri === "string" ? params.uri : null;
}
