/**
 * The `instances` section: several proxies serving one public URL. A 2025-era session and a
 * multi round-trip call live in the memory of the instance holding the child; another instance
 * that receives one of their requests passes it to the owner over an internal listener of its
 * own, authenticated with a secret every instance shares. The internal listener is never the
 * public one: a tunnel must not reach it.
 */
import {
  type Checker,
  type JsonObject,
  keyPath,
  knownKeys,
  object,
  string,
  stringArray,
} from "./check.ts";
import { hostPortProblem, isWildcardHost, type Listen, parseHostPort } from "./hosts.ts";

export interface InstancesSettings {
  /** The internal listener other instances forward to. */
  listen: Listen;
  /** The URL other instances reach this one at; absent: derived from the bound address. */
  url?: string;
  /** Shared by every instance: authenticates forwarded requests and owner tags. */
  secret: string;
  /** Other instances' hosts (`host` or `host:port`), for the derived `--allow-net`. */
  peers: string[];
}

export const INSTANCES_KEYS = ["listen", "url", "secret", "peers"] as const;

/** The shortest secret accepted (characters): 32 random bytes in base64 are 44. */
export const MIN_SECRET_LENGTH = 32;

const PEER = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;

/**
 * Reads `instances`; absent means one instance (nothing is forwarded). `taken` are the public
 * and admin listen addresses, which the internal listener must not share.
 */
export function parseInstances(
  ck: Checker,
  root: JsonObject,
  taken: { listen?: Listen; admin?: Listen },
): InstancesSettings | null {
  if (root.instances === undefined) return null;
  const section = object(ck, root.instances, "instances");
  if (!section) return null;
  knownKeys(ck, section, "instances", INSTANCES_KEYS);
  const listen = parseInternalListen(ck, section, taken);
  const secret = string(ck, section, "secret", "instances", { required: true });
  if (secret !== undefined && secret.length > 0 && secret.length < MIN_SECRET_LENGTH) {
    ck.fail(
      "instances.secret",
      `at least ${MIN_SECRET_LENGTH} characters, the same on every instance; generate one with ` +
        `"openssl rand -base64 32" and pass it as "\${PROXY_PEER_SECRET}"`,
    );
  }
  const url = parseUrl(ck, section, listen);
  const peers = stringArray(ck, section, "peers", "instances") ?? [];
  peers.forEach((peer, i) => {
    if (!PEER.test(peer)) {
      ck.fail(keyPath("instances.peers", i), `expected "HOST" or "HOST:PORT", got "${peer}"`);
    }
  });
  if (!listen || secret === undefined) return null;
  return { listen, secret, peers, ...(url ? { url } : {}) };
}

function parseInternalListen(
  ck: Checker,
  section: JsonObject,
  taken: { listen?: Listen; admin?: Listen },
): Listen | undefined {
  const text = string(ck, section, "listen", "instances", { required: true });
  if (text === undefined || text === "") return undefined;
  const parsed = parseHostPort(text);
  if (!parsed) return ck.fail("instances.listen", hostPortProblem(text));
  if (parsed.port !== 0) {
    for (
      const [name, other] of [["listen", taken.listen], ["admin.listen", taken.admin]] as const
    ) {
      if (other && other.port === parsed.port) {
        return ck.fail(
          "instances.listen",
          `port ${parsed.port} is already "${name}": the internal listener is a listener of ` +
            `its own, never the public one (a tunnel must not reach it); pick another port`,
        );
      }
    }
  }
  return parsed;
}

function parseUrl(
  ck: Checker,
  section: JsonObject,
  listen: Listen | undefined,
): string | undefined {
  const text = string(ck, section, "url", "instances", { nonEmpty: true });
  if (text === undefined) {
    if (listen && isWildcardHost(listen.hostname)) {
      ck.fail(
        "instances.url",
        `required when instances.listen is "${listen.hostname}" (every interface): the other ` +
          `instances need an address to reach this one, e.g. "http://10.0.0.5:7000"`,
      );
    }
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return ck.fail("instances.url", `expected a URL such as "http://10.0.0.5:7000"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return ck.fail("instances.url", "expected an http:// or https:// URL");
  }
  if (url.pathname !== "/" || url.search || url.hash || url.username || url.password) {
    return ck.fail("instances.url", `expected scheme://host:port only, e.g. "${url.origin}"`);
  }
  return url.origin;
}
