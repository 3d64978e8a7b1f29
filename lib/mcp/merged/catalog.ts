/**
 * What a merged session knows of its parts' items: the merged lists (every page of every live
 * part's list, renamed as clients see them) and where a request naming a tool, prompt or resource
 * goes, with the name or URI as that part's child knows it.
 * https://modelcontextprotocol.io/specification/2025-11-25/server
 */
import type { Router } from "../../router/router.ts";
import type { Reply } from "../../router/downstream.ts";
import { type CatalogueKind, notFoundBody } from "../../router/gate.ts";
import { errorBody, ErrorCode, isRecord, type JsonRpcId } from "../../jsonrpc.ts";
import type { Part } from "./part.ts";
import { NameTable, type Origin } from "./names.ts";
import { parsePrefixed, SubscribedUris, UriTable, type UriTarget } from "./uris.ts";
import { Refresh } from "./refresh.ts";
import {
  itemsOf,
  type ListKind,
  type ListMethod,
  mergeItems,
  nameTableOf,
  type ServerItems,
} from "./union.ts";

/** A name that may be a shortened form: only a list tells which item it stands for. */
const SHORTENED = /_[0-9a-f]{8}$/;
/** Pages of one child's list read for one merged list (a bound against endless cursors). */
const MAX_PAGES = 100;
let nextInternal = 1;
const COMPLETE = "completion/complete";
/** The lists a URI miss reads again: every resource list, or the templates' only. */
type MissList = "resources/list" | "resources/templates/list";

/** A request the merged session routes to one part, with how to answer it. */
export interface Target {
  part: Part;
  message: Record<string, unknown>;
  /** Rewrites the child's final answer (URIs in a read's contents). */
  rewrite?: (result: Record<string, unknown>) => void;
}

export class Catalog {
  readonly #names: Record<"tools" | "prompts", NameTable>;
  readonly #uris = new UriTable();
  readonly #subscribed = new SubscribedUris();
  /** The re-reads of the lists on a URI miss, by the list a miss reads (see Refresh). */
  readonly #refresh: Record<MissList, Refresh> = {
    "resources/list": new Refresh(async () => {
      await this.list("resources/list");
      await this.list("resources/templates/list");
    }),
    "resources/templates/list": new Refresh(() => this.list("resources/templates/list")),
  };

  /**
   * @param revive retries the parts whose child did not start, before each list
   */
  constructor(
    private readonly router: Router,
    private readonly separator: string,
    private readonly parts: readonly Part[],
    private readonly revive: () => Promise<void>,
  ) {
    this.#names = { tools: new NameTable(separator), prompts: new NameTable(separator) };
  }

  /**
   * The URI a client sees in an update of `uri` of `server`: the one it subscribed with, else
   * as a list shows it now.
   */
  updatedUri(server: string, uri: string): string {
    return this.#subscribed.clientUri({ server, uri }) ?? this.#uris.exposeUri(server, uri);
  }

  /** Forgets the URIs of a part whose child is gone. */
  forget(server: string): void {
    this.#uris.remove(server);
    this.changed();
  }

  /** A child announced that its resources changed: the next URI miss reads the lists again. */
  changed(): void {
    for (const refresh of Object.values(this.#refresh)) refresh.stale();
  }

  /**
   * One merged list: every live part's whole list (all its pages), renamed as clients see it.
   * A part whose child fails to answer is left out of this answer.
   */
  async list(method: ListMethod): Promise<Record<string, unknown>[]> {
    const kind = LIST_KINDS[method];
    await this.revive();
    const lists: ServerItems[] = [];
    const asked = this.parts.filter((p) => p.live && p.serverCapabilities[kind] !== undefined);
    const results = await Promise.all(asked.map((part) => this.#listAll(part, method)));
    asked.forEach((part, i) => {
      if (results[i]) lists.push({ server: part.name, items: results[i]! });
    });
    let names: NameTable | undefined;
    if (method === "tools/list" || method === "prompts/list") {
      names = nameTableOf(this.separator, lists);
      this.#names[kind as "tools" | "prompts"] = names;
    } else {
      for (const part of this.parts) if (!part.live) this.#uris.remove(part.name);
      for (const { server, items } of lists) {
        if (method === "resources/list") this.#uris.set(server, items.map((i) => i.uri as string));
        else this.#uris.setTemplates(server, items.map((i) => i.uriTemplate as string));
      }
    }
    return mergeItems(method, lists, { names, uris: this.#uris });
  }

  async #listAll(part: Part, method: ListMethod): Promise<Record<string, unknown>[] | null> {
    const items: Record<string, unknown>[] = [];
    let cursor: unknown = undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const answer = await this.#ask(part, method, cursor === undefined ? {} : { cursor });
      if (!isRecord(answer) || !isRecord(answer.result)) return page === 0 ? null : items;
      items.push(...itemsOf(method, answer.result));
      cursor = answer.result.nextCursor;
      if (typeof cursor !== "string" || cursor === "") break;
    }
    return items;
  }

  /** Sends one request of the proxy's own to a part and waits for its answer. */
  #ask(part: Part, method: string, params: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve) => {
      const reply: Reply = {
        streaming: false,
        send: () => {},
        end: (text) => resolve(parse(text)),
      };
      const message = { jsonrpc: "2.0", id: `mop-merged-${nextInternal++}`, method, params };
      this.router.route(part).request(message, reply);
    });
  }

  /**
   * The part a request goes to, with its name or URI as the child knows it, or the error
   * answer for a name or URI no part owns (the same as an unknown one).
   */
  async target(message: Record<string, unknown>): Promise<Target | string> {
    const id = message.id as JsonRpcId;
    const method = message.method as string;
    const params = isRecord(message.params) ? { ...message.params } : {};
    const forward = (part: Part, rewrite?: Target["rewrite"]): Target => ({
      part,
      message: { ...message, params },
      rewrite,
    });
    switch (method) {
      case "tools/call":
      case "prompts/get": {
        const kind = method === "tools/call" ? "tools" : "prompts";
        const origin = await this.#resolveName(kind, params.name, method);
        const what = kind === "tools" ? "tool" : "prompt";
        if (!origin) return unknownItem(id, `Unknown ${what}: ${String(params.name)}`);
        params.name = origin.name;
        return forward(this.#part(origin.server)!);
      }
      case "resources/read":
      case "resources/subscribe":
      case "resources/unsubscribe": {
        const target = await this.#resolveUri(params.uri);
        if (typeof target === "string") {
          if (target === "unknown") this.#auditUri(method, params.uri);
          return unknownResource(id, params.uri, target);
        }
        const asked = params.uri as string;
        params.uri = target.uri;
        const part = this.#part(target.server)!;
        if (method === "resources/subscribe") this.#subscribed.add(target, asked);
        if (method === "resources/unsubscribe") this.#subscribed.remove(target);
        const rewrite = method === "resources/read"
          ? this.#readRewrite(part, { asked, child: target.uri })
          : undefined;
        return forward(part, rewrite);
      }
      case "completion/complete":
        return await this.#completionTarget(id, params, forward);
    }
    return errorBody(id, ErrorCode.MethodNotFound, `method not found: ${method}`);
  }

  async #completionTarget(
    id: JsonRpcId,
    params: Record<string, unknown>,
    forward: (part: Part) => Target,
  ): Promise<Target | string> {
    const ref = isRecord(params.ref) ? { ...params.ref } : {};
    params.ref = ref;
    if (ref.type === "ref/prompt") {
      const origin = await this.#resolveName("prompts", ref.name, COMPLETE);
      if (!origin) return unknownItem(id, `Unknown prompt: ${String(ref.name)}`);
      ref.name = origin.name;
      return forward(this.#part(origin.server)!);
    }
    if (ref.type === "ref/resource") {
      const target = await this.#resolveUri(ref.uri, "resources/templates/list");
      if (target === "ambiguous") return unknownResource(id, ref.uri, target);
      const unknown = unknownItem(id, `Unknown resource template: ${String(ref.uri)}`);
      if (target === "unknown") return unknown;
      const part = this.#part(target.server)!;
      if (!await this.#shows(part, "resourceTemplates", target.uri, COMPLETE)) return unknown;
      ref.uri = target.uri;
      return forward(part);
    }
    return errorBody(id, ErrorCode.InvalidParams, "invalid params: unknown completion ref");
  }

  /**
   * The child item of an exposed name: from the last list; else, unshortened, the item of that
   * name when its child lists it and its filters show it (a hidden one is reported as refused);
   * else, shortened, from a fresh list. Undefined when the client may not name it.
   */
  async #resolveName(
    kind: "tools" | "prompts",
    name: unknown,
    method: string,
  ): Promise<Origin | undefined> {
    if (typeof name !== "string") return undefined;
    const live = this.#liveNames(kind);
    const listed = this.#names[kind].resolve(name);
    if (listed && live.includes(listed.server)) return listed;
    if (!SHORTENED.test(name)) {
      const origin = this.#names[kind].resolve(name, live);
      if (!origin) return undefined;
      return await this.#shows(this.#part(origin.server)!, kind, origin.name, method)
        ? origin
        : undefined;
    }
    await this.list(kind === "tools" ? "tools/list" : "prompts/list");
    const found = this.#names[kind].resolve(name);
    return found && live.includes(found.server) ? found : undefined;
  }

  /**
   * Whether a part's child lists `name` (its own list, kept by the router) and the server's
   * filters show it; a hidden item is reported as the filters' refusal.
   */
  async #shows(part: Part, kind: CatalogueKind, name: string, method: string): Promise<boolean> {
    const mux = this.router.route(part).mux;
    const lists = { tools: mux.tools, prompts: mux.prompts, resourceTemplates: mux.templates };
    const item = await lists[kind].get(name).catch(() => undefined);
    return item !== undefined && !mux.gate?.hides(part, method, kind, item, name);
  }

  /**
   * A URI no server lists: each serving server whose filters hide it reports the refusal (a
   * prefixed form names its server, which judges it when routed).
   */
  #auditUri(method: string, uri: unknown): void {
    if (typeof uri !== "string" || parsePrefixed(uri)) return;
    for (const part of this.parts) {
      if (part.live && part.serverCapabilities.resources !== undefined) {
        this.router.route(part).mux.gate?.hidesUri(part, method, uri);
      }
    }
  }

  /**
   * Where a URI goes, from the lists as last read; on a miss, from the lists read again unless
   * nothing changed since they were (see Refresh).
   */
  async #resolveUri(
    uri: unknown,
    refresh: MissList = "resources/list",
  ): Promise<UriTarget | "unknown" | "ambiguous"> {
    if (typeof uri !== "string") return "unknown";
    const candidates = this.#liveNames("resources");
    const first = this.#uris.resolve(uri, candidates);
    if (typeof first !== "string") return first;
    await this.#refresh[refresh].run(candidates.join("\n"));
    return this.#uris.resolve(uri, this.#liveNames("resources"));
  }

  #liveNames(kind: ListKind): string[] {
    return this.parts.filter((p) => p.live && p.serverCapabilities[kind] !== undefined)
      .map((p) => p.name);
  }

  #part(server: string): Part | undefined {
    return this.parts.find((p) => p.name === server);
  }

  /**
   * A read's contents with URIs as the client knows them: the URI it read as it asked for it
   * (a sessionless request's catalog has listed nothing), any other as a list would show it.
   */
  #readRewrite(
    part: Part,
    uri: { asked: string; child: string },
  ): (result: Record<string, unknown>) => void {
    return (result) => {
      if (!Array.isArray(result.contents)) return;
      for (const content of result.contents) {
        if (!isRecord(content) || typeof content.uri !== "string") continue;
        content.uri = content.uri === uri.child
          ? uri.asked
          : this.#uris.exposeUri(part.name, content.uri);
      }
    };
  }
}

const LIST_KINDS: Record<ListMethod, ListKind> = {
  "tools/list": "tools",
  "prompts/list": "prompts",
  "resources/list": "resources",
  "resources/templates/list": "resources",
};

export function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The answer to a name no server of the endpoint offers, as a child answers an unknown one. */
function unknownItem(id: JsonRpcId, message: string): string {
  return errorBody(id, ErrorCode.InvalidParams, message);
}

/**
 * The answer to a URI no server owns (MCP Resources, "Error Handling": -32002 resource not
 * found), or one several servers list (then the prefixed form names the server).
 * https://modelcontextprotocol.io/specification/2025-11-25/server/resources#error-handling
 */
function unknownResource(id: JsonRpcId, uri: unknown, why: "unknown" | "ambiguous"): string {
  const text = String(uri).slice(0, 300);
  if (why === "ambiguous") {
    return errorBody(
      id,
      ErrorCode.InvalidParams,
      `several servers have ${text}: use the mcp-merged://<server>/ form from resources/list`,
    );
  }
  return notFoundBody(id, text);
}

/** An answer with its `result` rewritten in place (other answers as they are). */
export function rewriteResult(
  text: string,
  rewrite: (result: Record<string, unknown>) => void,
): string {
  const message = parse(text);
  if (!isRecord(message) || !isRecord(message.result)) return text;
  rewrite(message.result);
  return JSON.stringify(message);
}

/** A JSON-RPC id as a map key (a number and its string are different ids). */
export function key(id: unknown): string {
  return `${typeof id}:${String(id)}`;
}
