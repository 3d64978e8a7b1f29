/**
 * `subscriptions/listen`: a long-lived POST response stream carrying the change notifications a
 * sessionless client opted in to, from the child serving its (identity, server). The first
 * frame acknowledges the honored subset of the filter; each notification carries the
 * subscription id (the request's id) in `_meta`. The proxy subscribes the child to resources
 * (2025 `resources/subscribe`) on the listeners' behalf and unsubscribes when the last listener
 * for a resource closes. A child restart reaches listeners as list-changed notifications, and
 * the new child is subscribed again to the resources they listen to.
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/subscriptions
 */
import type { Identity, RoutedSession, Router } from "../../router/router.ts";
import type { Reply } from "../../router/downstream.ts";
import type { ServerConfig } from "../../config/schema.ts";
import { ErrorCode, isRecord, type JsonRpcId } from "../../jsonrpc.ts";
import { rpcError } from "../http.ts";
import type { McpService } from "../service.ts";
import { formatEvent, SSE_HEADERS, type SseRegistry, SseWriter } from "../sse.ts";
import { META } from "./protocol.ts";
import { SessionlessDownstream } from "./downstream.ts";

/** The notification types a listener may opt in to (schema, `SubscriptionFilter`). */
export interface SubscriptionFilter {
  toolsListChanged?: true;
  promptsListChanged?: true;
  resourcesListChanged?: true;
  resourceSubscriptions?: string[];
}

/** A filter from the request's `params.notifications`, or null when it is malformed. */
export function parseFilter(value: unknown): SubscriptionFilter | null {
  if (!isRecord(value)) return null;
  const out: SubscriptionFilter = {};
  for (const key of ["toolsListChanged", "promptsListChanged", "resourcesListChanged"] as const) {
    const v = value[key];
    if (v !== undefined && typeof v !== "boolean") return null;
    if (v === true) out[key] = true;
  }
  const uris = value.resourceSubscriptions;
  if (uris !== undefined) {
    if (!Array.isArray(uris) || uris.some((u) => typeof u !== "string") || uris.length > 1000) {
      return null;
    }
    if (uris.length > 0) out.resourceSubscriptions = [...new Set(uris as string[])];
  }
  return out;
}

/**
 * What the server can deliver of a filter, given the child's capabilities: list changes where
 * it declared `listChanged`, resource updates where it declared `resources.subscribe`.
 */
export function honored(
  filter: SubscriptionFilter,
  capabilities: Record<string, unknown>,
): SubscriptionFilter {
  const bit = (kind: string, name: string) => {
    const cap = capabilities[kind];
    return isRecord(cap) && cap[name] === true;
  };
  const out: SubscriptionFilter = {};
  if (filter.toolsListChanged && bit("tools", "listChanged")) out.toolsListChanged = true;
  if (filter.promptsListChanged && bit("prompts", "listChanged")) out.promptsListChanged = true;
  if (filter.resourcesListChanged && bit("resources", "listChanged")) {
    out.resourcesListChanged = true;
  }
  if (filter.resourceSubscriptions && bit("resources", "subscribe")) {
    out.resourceSubscriptions = filter.resourceSubscriptions;
  }
  return out;
}

/** Whether a child notification passes a filter. */
export function accepts(filter: SubscriptionFilter, message: Record<string, unknown>): boolean {
  switch (message.method) {
    case "notifications/tools/list_changed":
      return filter.toolsListChanged === true;
    case "notifications/prompts/list_changed":
      return filter.promptsListChanged === true;
    case "notifications/resources/list_changed":
      return filter.resourcesListChanged === true;
    case "notifications/resources/updated": {
      const uri = isRecord(message.params) ? message.params.uri : undefined;
      return typeof uri === "string" && (filter.resourceSubscriptions ?? []).includes(uri);
    }
    default:
      return false;
  }
}

/** A notification with the subscription id added to its `_meta`. */
export function tagged(message: Record<string, unknown>, id: JsonRpcId): string {
  const params = isRecord(message.params) ? message.params : {};
  const meta = isRecord(params._meta) ? params._meta : {};
  return JSON.stringify({
    jsonrpc: "2.0",
    method: message.method,
    params: { ...params, _meta: { ...meta, [META.subscriptionId]: id } },
  });
}

/** What a listener needs from the proxy around it. */
export interface ListenerOptions {
  id: JsonRpcId;
  server: ServerConfig;
  identity: Identity;
  filter: SubscriptionFilter;
  serverInfo: Record<string, unknown>;
  registry: SseRegistry;
  /** Called once when the stream ends, from either side. */
  onClose(listener: Listener): void;
  /** A new child serves the listener (see `Downstream.childReady`). */
  onChildReady?(listener: Listener, pid: number): void;
}

/** One open `subscriptions/listen` stream, attached to its child as a downstream. */
export class Listener extends SessionlessDownstream {
  /** A listener answers no server-to-client request and takes no log message. */
  readonly capabilities = { sampling: false, elicitation: false, roots: false };
  readonly response: Response;
  #writer: SseWriter;

  constructor(readonly options: ListenerOptions) {
    super("listen", options.server, options.identity);
    this.#writer = new SseWriter(options.registry);
    this.response = new Response(this.#writer.body, { headers: SSE_HEADERS });
    this.#writer.write(formatEvent(tagged({
      method: "notifications/subscriptions/acknowledged",
      params: { notifications: options.filter },
    }, options.id)));
    this.#writer.onClose(() => options.onClose(this));
  }

  get closed(): boolean {
    return this.#writer.closed;
  }

  /** A child notification for every downstream of the child: passed on if the filter wants it. */
  notify(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (!isRecord(message) || !accepts(this.options.filter, message)) return;
    this.#writer.write(formatEvent(tagged(message, this.options.id)));
  }

  childReady(pid: number): void {
    if (!this.closed) this.options.onChildReady?.(this, pid);
  }

  /** Registers a callback for when the stream ends, from either side. */
  onClose(callback: () => void): void {
    this.#writer.onClose(callback);
  }

  /**
   * The client cancelled the listen request (`notifications/cancelled` naming its id): the
   * stream ends without a result, as a cancelled request gets none.
   */
  cancel(): void {
    this.#writer.close();
  }

  /** Ends the subscription gracefully: the listen request's result, then the end of the stream. */
  end(): void {
    const result = {
      resultType: "complete",
      _meta: { [META.subscriptionId]: this.options.id, [META.serverInfo]: this.options.serverInfo },
    };
    this.#writer.write(
      formatEvent(JSON.stringify({ jsonrpc: "2.0", id: this.options.id, result })),
    );
    this.#writer.close();
  }
}

/** A reply for requests the proxy sends a child on its own behalf; their answers are dropped. */
export const IGNORED: Reply = { streaming: false, send: () => {}, end: () => {} };

/** Open listen streams of a proxy, and the resources their children are subscribed to. */
export interface Listening {
  open: number;
  resources: ResourceSubscriptions;
}
const listenings = new WeakMap<McpService, Listening>();
let nextSubscribeId = 1;

/**
 * A listen request's filter and the proxy's listen state, or the refusal: a malformed filter
 * (-32602), or as many open streams as `limits.sessionsTotal` allows.
 */
export function admit(
  svc: McpService,
  id: JsonRpcId,
  notifications: unknown,
): { filter: SubscriptionFilter; listening: Listening } | Response {
  const filter = parseFilter(notifications);
  if (!filter) {
    return rpcError(
      200,
      id,
      ErrorCode.InvalidParams,
      "invalid params: notifications must be a subscription filter",
    );
  }
  let listening = listenings.get(svc);
  if (!listening) {
    listenings.set(svc, listening = { open: 0, resources: new ResourceSubscriptions() });
  }
  if (listening.open >= svc.limits.sessionsTotal) {
    return rpcError(
      200,
      id,
      ErrorCode.InternalError,
      "too many open subscriptions; try again later",
    );
  }
  return { filter, listening };
}

/**
 * Sends `resources/subscribe` or `resources/unsubscribe` for each of `uris` to the child of
 * `via`, on the listeners' behalf (server/resources, "Subscriptions"); answers are dropped.
 */
export function askResources(router: Router, via: RoutedSession, method: string, uris: string[]) {
  for (const uri of uris) {
    const id = `mop-listen-${nextSubscribeId++}`;
    router.request(via, { jsonrpc: "2.0", id, method, params: { uri } }, IGNORED);
  }
}

/**
 * The resources the listeners of each child are subscribed to, counted, so the child gets one
 * `resources/subscribe` per resource and a `resources/unsubscribe` when the last listener goes.
 */
export class ResourceSubscriptions {
  #counts = new Map<string, Map<string, number>>();
  /** The child process each child's subscriptions were last renewed at. */
  #renewed = new Map<string, number>();

  /** Adds `uris` for `child`; returns the ones the child must now be subscribed to. */
  add(child: string, uris: string[]): string[] {
    const counts = this.#counts.get(child) ?? new Map<string, number>();
    this.#counts.set(child, counts);
    const fresh: string[] = [];
    for (const uri of uris) {
      const n = counts.get(uri) ?? 0;
      if (n === 0) fresh.push(uri);
      counts.set(uri, n + 1);
    }
    return fresh;
  }

  /** Removes `uris` for `child`; returns the ones no listener wants any more. */
  remove(child: string, uris: string[]): string[] {
    const counts = this.#counts.get(child);
    if (!counts) return [];
    const gone: string[] = [];
    for (const uri of uris) {
      const n = (counts.get(uri) ?? 0) - 1;
      if (n > 0) counts.set(uri, n);
      else if (counts.delete(uri)) gone.push(uri);
    }
    if (counts.size === 0) {
      this.#counts.delete(child);
      this.#renewed.delete(child);
    }
    return gone;
  }

  /**
   * A new process (`pid`) serves `child`: every resource its listeners want, to subscribe the
   * new process to, the first time this process is named; nothing after that.
   */
  renew(child: string, pid: number): string[] {
    const counts = this.#counts.get(child);
    if (!counts || this.#renewed.get(child) === pid) return [];
    this.#renewed.set(child, pid);
    return [...counts.keys()];
  }
}
