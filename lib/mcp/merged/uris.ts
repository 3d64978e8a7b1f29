/**
 * Resource URIs of the merged endpoint, pure: a read, subscription or completion is routed to
 * the server that listed the URI (or a template matching it). URIs are passed through unchanged
 * unless two servers list the same one; those are exposed as `mcp-merged://<server>/<uri>`, a
 * form the endpoint always accepts.
 * https://modelcontextprotocol.io/specification/2025-11-25/server/resources
 */

/** The scheme of the prefixed form of a URI two servers share. */
export const MERGED_SCHEME = "mcp-merged";
const PREFIX = `${MERGED_SCHEME}://`;

/** Where a URI goes: the server and the URI as that server knows it. */
export interface UriTarget {
  server: string;
  uri: string;
}

/** Why a URI could not be routed. */
export type UriMiss = "unknown" | "ambiguous";

/** The prefixed form of `uri` of `server`. */
export function prefixedUri(server: string, uri: string): string {
  return `${PREFIX}${server}/${uri}`;
}

/** The server and URI of a prefixed form, or null for any other URI. */
export function parsePrefixed(uri: string): UriTarget | null {
  if (!uri.startsWith(PREFIX)) return null;
  const rest = uri.slice(PREFIX.length);
  const slash = rest.indexOf("/");
  if (slash <= 0 || slash === rest.length - 1) return null;
  return { server: rest.slice(0, slash), uri: rest.slice(slash + 1) };
}

/**
 * A loose matcher for an RFC 6570 URI template: literal text must match exactly, each
 * expression matches any text. It only chooses between servers, so it errs towards matching.
 * https://www.rfc-editor.org/rfc/rfc6570#section-2
 */
export function templateMatcher(template: string): RegExp {
  const parts = template.split(/\{[^}]*\}/);
  const escaped = parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`, "s");
}

interface ServerUris {
  uris: Set<string>;
  templates: { template: string; matcher: RegExp }[];
}

/** The URIs and templates each server listed, and the collisions between servers. */
export class UriTable {
  readonly #servers = new Map<string, ServerUris>();
  #owners = new Map<string, string[]>();
  #templateOwners = new Map<string, string[]>();

  /** Replaces what `server` lists (its resources' URIs and its templates). */
  set(server: string, uris: Iterable<string>, templates?: Iterable<string>): void {
    const old = this.#servers.get(server);
    const entry: ServerUris = {
      uris: new Set(uris),
      templates: templates === undefined
        ? old?.templates ?? []
        : [...templates].map((template) => ({ template, matcher: templateMatcher(template) })),
    };
    this.#servers.set(server, entry);
    this.#index();
  }

  /** Replaces only the templates of `server`. */
  setTemplates(server: string, templates: Iterable<string>): void {
    this.set(server, this.#servers.get(server)?.uris ?? [], templates);
  }

  /** Forgets a server (its child is gone). */
  remove(server: string): void {
    if (this.#servers.delete(server)) this.#index();
  }

  #index(): void {
    this.#owners = new Map();
    this.#templateOwners = new Map();
    for (const [server, entry] of this.#servers) {
      for (const uri of entry.uris) push(this.#owners, uri, server);
      for (const { template } of entry.templates) push(this.#templateOwners, template, server);
    }
  }

  /** The URI a client sees for `uri` of `server`: prefixed only when another server lists it. */
  exposeUri(server: string, uri: string): string {
    return (this.#owners.get(uri)?.length ?? 0) > 1 ? prefixedUri(server, uri) : uri;
  }

  /** The template a client sees for `template` of `server` (prefixed when shared). */
  exposeTemplate(server: string, template: string): string {
    return (this.#templateOwners.get(template)?.length ?? 0) > 1
      ? prefixedUri(server, template)
      : template;
  }

  /**
   * Where a URI from the client goes, in order: the prefixed form; the one server that listed
   * it; the one server with a matching template; the only server of `candidates` (those that
   * serve resources at all).
   */
  resolve(uri: string, candidates: readonly string[]): UriTarget | UriMiss {
    const prefixed = parsePrefixed(uri);
    if (prefixed) return candidates.includes(prefixed.server) ? prefixed : "unknown";
    const owners = (this.#owners.get(uri) ?? []).filter((s) => candidates.includes(s));
    if (owners.length === 1) return { server: owners[0], uri };
    if (owners.length > 1) return "ambiguous";
    const matching = new Set<string>();
    for (const [server, entry] of this.#servers) {
      if (!candidates.includes(server)) continue;
      if (entry.templates.some((t) => t.matcher.test(uri))) matching.add(server);
    }
    if (matching.size === 1) return { server: [...matching][0], uri };
    if (matching.size > 1) return "ambiguous";
    return candidates.length === 1 ? { server: candidates[0], uri } : "unknown";
  }
}

function push(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * The URI the client subscribed to each resource with, by server and the URI as that server's
 * child knows it: an update for a subscribed resource is named as the client named it, even once
 * the collision that gave it the prefixed form is gone (the other server's child down or no
 * longer the person's). The first name the client used stays until it unsubscribes.
 * https://modelcontextprotocol.io/specification/2025-11-25/server/resources#subscriptions
 */
export class SubscribedUris {
  readonly #clients = new Map<string, string>();

  /** The client subscribed to `target` naming it `client`. */
  add(target: UriTarget, client: string): void {
    const key = subscriptionKey(target);
    if (!this.#clients.has(key)) this.#clients.set(key, client);
  }

  /** The client unsubscribed from `target` (under any name). */
  remove(target: UriTarget): void {
    this.#clients.delete(subscriptionKey(target));
  }

  /** The name the client subscribed to `target` with, if it did. */
  clientUri(target: UriTarget): string | undefined {
    return this.#clients.get(subscriptionKey(target));
  }
}

function subscriptionKey({ server, uri }: UriTarget): string {
  return `${server}\n${uri}`;
}
