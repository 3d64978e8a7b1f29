/**
 * Tool and prompt names of the merged endpoint, pure: each child item is exposed as
 * `<server><separator><name>`; a name longer than clients accept or holding other characters is
 * exposed in a deterministic shortened form, and a name taken twice gets a salted one.
 *
 * The limit is what the MCP clients people use accept for tool names: 1 to 64 characters of
 * `[A-Za-z0-9_-]` (MCP 2025-11-25, Server Features › Tools › "Tool Names" recommends the same
 * set: https://modelcontextprotocol.io/specification/2025-11-25/server/tools#tool-names).
 */

/** The longest exposed name. */
export const NAME_LIMIT = 64;
/** Length of the hash suffix of a shortened name. */
const HASH_LENGTH = 8;
const SAFE_NAME = /^[A-Za-z0-9_-]+$/;
const UNSAFE_CHAR = /[^A-Za-z0-9_-]/g;

/** One child item: the server that lists it and the name it has there. */
export interface Origin {
  server: string;
  name: string;
}

/**
 * FNV-1a (32 bit) of the UTF-8 bytes of `text`, as 8 lower-case hex digits: a stable,
 * synchronous fingerprint (not a security property).
 * http://www.isthe.com/chongo/tech/comp/fnv/index.html#FNV-1a
 */
export function fingerprint(text: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(HASH_LENGTH, "0");
}

/**
 * The shortened form: the joined name with every character outside `[A-Za-z0-9_-]` replaced by
 * `_`, cut to 55 characters, then `_` and the fingerprint of server, name and `salt`.
 */
export function shortenedName(server: string, name: string, separator: string, salt = ""): string {
  const safe = `${server}${separator}${name}`.replace(UNSAFE_CHAR, "_");
  const hash = fingerprint(`${server}\u0000${name}\u0000${salt}`);
  return `${safe.slice(0, NAME_LIMIT - HASH_LENGTH - 1)}_${hash}`;
}

/** `<server><separator><name>` when clients accept it as is, else the shortened form. */
export function exposedName(server: string, name: string, separator: string): string {
  const joined = `${server}${separator}${name}`;
  if (joined.length <= NAME_LIMIT && SAFE_NAME.test(joined)) return joined;
  return shortenedName(server, name, separator);
}

/**
 * The names of one kind (tools or prompts) across servers, both ways. Built from the children's
 * list results in a fixed order (servers as configured, items as listed), so the same lists
 * always give the same names.
 */
export class NameTable {
  readonly #byExposed = new Map<string, Origin>();
  readonly #byOrigin = new Map<string, string>();

  constructor(readonly separator: string) {}

  /** The table for `lists`, in order: each server with the names it lists. */
  static build(
    separator: string,
    lists: Iterable<{ server: string; names: readonly string[] }>,
  ): NameTable {
    const table = new NameTable(separator);
    for (const { server, names } of lists) for (const name of names) table.add(server, name);
    return table;
  }

  /** Assigns (or returns) the exposed name of one child item. */
  add(server: string, name: string): string {
    const key = `${server}\u0000${name}`;
    const known = this.#byOrigin.get(key);
    if (known !== undefined) return known;
    let exposed = exposedName(server, name, this.separator);
    for (let n = 1; this.#byExposed.has(exposed); n++) {
      exposed = shortenedName(server, name, this.separator, String(n));
    }
    this.#byExposed.set(exposed, { server, name });
    this.#byOrigin.set(key, exposed);
    return exposed;
  }

  /** The exposed name of a child item already in the table. */
  exposed(server: string, name: string): string | undefined {
    return this.#byOrigin.get(`${server}\u0000${name}`);
  }

  /**
   * The child item an exposed name stands for: from the table, else (a call before any list)
   * the unshortened `<server><separator><name>` of one of `servers`.
   */
  resolve(exposed: string, servers: readonly string[] = []): Origin | undefined {
    const found = this.#byExposed.get(exposed);
    if (found) return found;
    for (const server of servers) {
      const prefix = `${server}${this.separator}`;
      if (!exposed.startsWith(prefix)) continue;
      const name = exposed.slice(prefix.length);
      if (name !== "" && exposedName(server, name, this.separator) === exposed) {
        return { server, name };
      }
    }
    return undefined;
  }

  get size(): number {
    return this.#byExposed.size;
  }
}
