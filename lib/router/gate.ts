/**
 * Applies a server's filters (lib/policy) to the messages between its sessions and one child,
 * whatever transport or protocol era they came through: list results lose the hidden items (a
 * page may get shorter; the child's cursor passes through untouched), and a call, get, read,
 * subscribe or completion naming a hidden item is refused exactly as an unknown one is.
 *
 * Indistinguishable refusals: for tools, prompts and resource templates the gate judges a name
 * against the child's own list (the catalogue, with the tools' annotations) and answers both a
 * hidden and an absent name itself, with one error; such a request never reaches the child. A
 * resource URI cannot be judged by a list (templates make URIs without end), so a hidden URI
 * is answered with MCP's resource-not-found error, and the child's own not-found answers
 * (-32002, or -32602 as many servers send) are rewritten to those same words.
 * Error codes: https://modelcontextprotocol.io/specification/2025-06-18/server/tools#error-handling,
 * https://modelcontextprotocol.io/specification/2025-06-18/server/prompts#error-handling,
 * https://modelcontextprotocol.io/specification/2025-06-18/server/resources#error-handling
 */
import { errorBody, ErrorCode, isRecord, type JsonRpcId } from "../jsonrpc.ts";
import type { Decision, Policy, PolicyKind } from "../policy/policy.ts";
import type { ListCatalogue } from "./catalogue.ts";
import type { Downstream, Reply } from "./downstream.ts";

/** MCP's resource-not-found code (2025 revisions). */
export const RESOURCE_NOT_FOUND = -32002;

/**
 * The codes servers answer an unknown resource with: MCP's -32002, and the invalid-params code
 * many servers use instead; a filtered server's answers with either become the proxy's own.
 */
const NOT_FOUND_CODES: ReadonlySet<unknown> = new Set([
  RESOURCE_NOT_FOUND,
  ErrorCode.InvalidParams,
]);

/** One refused request, for the audit log: who, which server, which item, which rule. */
export interface Refusal {
  session: Downstream;
  server: string;
  method: string;
  /** The tool or prompt name, resource URI or template the request named. */
  item: string;
  rule: string;
}

/** The lists a name is judged against. */
export type CatalogueKind = "tools" | "prompts" | "resourceTemplates";
/** The child's own lists (lib/router/catalogue.ts), as the multiplexer keeps them. */
export type Catalogues = Record<CatalogueKind, Pick<ListCatalogue, "get">>;

/** Sends a (possibly rewritten) request on to the child, answering on `reply`. */
type Forward = (message: Record<string, unknown>, reply: Reply) => void;

const LISTS: Record<string, { kind: PolicyKind; key: string }> = {
  "tools/list": { kind: "tools", key: "tools" },
  "prompts/list": { kind: "prompts", key: "prompts" },
  "resources/list": { kind: "resources", key: "resources" },
  "resources/templates/list": { kind: "resources", key: "resourceTemplates" },
};

/** The requests that name one tool, prompt or resource: the gate judges these. */
const JUDGED: ReadonlySet<string> = new Set([
  "tools/call",
  "prompts/get",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "completion/complete",
]);

/** What an absent name is called in the refusal, by catalogue. */
const UNKNOWN: Record<CatalogueKind, string> = {
  tools: "Unknown tool",
  prompts: "Unknown prompt",
  resourceTemplates: "Unknown resource template",
};

/** The filters of one server in front of one child. */
export class Gate {
  constructor(
    readonly policy: Policy,
    readonly server: string,
    readonly lists: Catalogues,
    readonly onRefusal?: (refusal: Refusal) => void,
  ) {}

  /** Passes `message` on (its reply maybe filtered) or answers it with a refusal. */
  request(session: Downstream, message: Record<string, unknown>, reply: Reply, forward: Forward) {
    const method = message.method as string;
    const list = LISTS[method];
    if (list) {
      if (!this.policy.filters(list.kind)) return forward(message, reply);
      return forward(message, new Rewrite(reply, (m) => this.#filterList(m, list.key)));
    }
    if (!JUDGED.has(method)) return forward(message, reply);
    const params = isRecord(message.params) ? message.params : {};
    const asked = { session, message, reply, forward, method };
    switch (method) {
      case "tools/call":
        return this.#named(asked, "tools", params.name);
      case "prompts/get":
        return this.#named(asked, "prompts", params.name);
      case "resources/read":
      case "resources/subscribe":
      case "resources/unsubscribe":
        return this.#resource(asked, params.uri);
      case "completion/complete":
        return this.#completion(asked, params.ref);
    }
  }

  /**
   * Whether these filters hide `item` (a `kind` entry as the child lists it, under `name`) from
   * a request the caller answers itself (the merged endpoint); such a refusal is reported (audit
   * log, metric) as the gate's own are.
   */
  hides(
    session: Downstream,
    method: string,
    kind: CatalogueKind,
    item: Record<string, unknown>,
    name: string,
  ): boolean {
    const decision = this.#judge(kind, item);
    if (decision.allowed) return false;
    this.#refused({ session, method }, name, decision.rule);
    return true;
  }

  /** The same for a resource URI, judged by the URI alone as `resources/read` is. */
  hidesUri(session: Downstream, method: string, uri: string): boolean {
    const decision = this.policy.resource(uri);
    if (decision.allowed) return false;
    this.#refused({ session, method }, uri, decision.rule);
    return true;
  }

  /** A child notification: false when it speaks of a hidden resource (never delivered). */
  delivers(message: Record<string, unknown>): boolean {
    if (message.method !== "notifications/resources/updated") return true;
    const uri = isRecord(message.params) ? message.params.uri : undefined;
    return typeof uri !== "string" || this.policy.resource(uri).allowed;
  }

  #filterList(message: Record<string, unknown>, key: string): void {
    const result = message.result;
    if (!isRecord(result) || !Array.isArray(result[key])) return;
    result[key] = (result[key] as unknown[]).filter((item) =>
      isRecord(item) && this.#judge(key, item).allowed
    );
  }

  #judge(key: string, item: Record<string, unknown>): Decision {
    const text = (field: string) => typeof item[field] === "string" ? item[field] as string : "";
    switch (key) {
      case "tools":
        return this.policy.tool({ name: text("name"), annotations: item.annotations });
      case "prompts":
        return this.policy.prompt(text("name"));
      case "resources":
        return this.policy.resource(text("uri"));
      default:
        return this.policy.template(text("uriTemplate"));
    }
  }

  /** tools/call, prompts/get and a completion's ref/prompt or ref/resource: judged by the list. */
  #named(asked: Asked, kind: CatalogueKind, name: unknown): void {
    const policyKind: PolicyKind = kind === "resourceTemplates" ? "resources" : kind;
    if (typeof name !== "string" || !this.policy.filters(policyKind)) {
      return asked.forward(asked.message, asked.reply);
    }
    const id = asked.message.id as JsonRpcId;
    this.lists[kind].get(name).then((item) => {
      const decision = item ? this.#judge(kind, item) : null;
      if (decision?.allowed) return asked.forward(asked.message, asked.reply);
      if (decision) this.#refused(asked, name, decision.rule);
      asked.reply.end(errorBody(id, ErrorCode.InvalidParams, `${UNKNOWN[kind]}: ${name}`));
    }, (error: Error) => {
      asked.reply.end(errorBody(id, ErrorCode.InternalError, error.message));
    });
  }

  /** resources/read, subscribe and unsubscribe: judged by the URI. */
  #resource(asked: Asked, uri: unknown): void {
    if (typeof uri !== "string" || !this.policy.filters("resources")) {
      return asked.forward(asked.message, asked.reply);
    }
    const decision = this.policy.resource(uri);
    const notFound = () => notFoundBody(asked.message.id as JsonRpcId, uri);
    if (!decision.allowed) {
      this.#refused(asked, uri, decision.rule);
      return asked.reply.end(notFound());
    }
    asked.forward(
      asked.message,
      new Rewrite(asked.reply, (message) => {
        if (isRecord(message.error) && NOT_FOUND_CODES.has(message.error.code)) {
          message.error = JSON.parse(notFound()).error;
        }
      }),
    );
  }

  /** completion/complete names a prompt or a resource template (server/utilities/completion). */
  #completion(asked: Asked, ref: unknown): void {
    if (isRecord(ref) && ref.type === "ref/prompt") return this.#named(asked, "prompts", ref.name);
    if (isRecord(ref) && ref.type === "ref/resource") {
      return this.#named(asked, "resourceTemplates", ref.uri);
    }
    asked.forward(asked.message, asked.reply);
  }

  #refused(asked: Pick<Asked, "session" | "method">, item: string, rule: string): void {
    this.onRefusal?.({
      session: asked.session,
      server: this.server,
      method: asked.method,
      item: item.slice(0, 512),
      rule,
    });
  }
}

interface Asked {
  session: Downstream;
  message: Record<string, unknown>;
  reply: Reply;
  forward: Forward;
  method: string;
}

/** The resource-not-found answer (server/resources#error-handling). */
export function notFoundBody(id: JsonRpcId, uri: string): string {
  return errorBody(id, RESOURCE_NOT_FOUND, "Resource not found", { uri });
}

/** A reply whose final message is rewritten in place before it goes on. */
class Rewrite implements Reply {
  constructor(
    readonly inner: Reply,
    readonly edit: (message: Record<string, unknown>) => void,
  ) {}

  get streaming(): boolean {
    return this.inner.streaming;
  }

  get waiting(): boolean | undefined {
    return this.inner.waiting;
  }

  send(text: string): void {
    this.inner.send(text);
  }

  end(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return this.inner.end(text);
    }
    if (!isRecord(message)) return this.inner.end(text);
    this.endMessage(message);
  }

  /** The child's answer as parsed by the multiplexer: edited without a second parse. */
  endMessage(message: Record<string, unknown>): void {
    this.edit(message);
    if (this.inner.endMessage) this.inner.endMessage(message);
    else this.inner.end(JSON.stringify(message));
  }
}
