/**
 * The `admin` section: where the owner's endpoints (`/metrics`, `/healthz` with details) listen.
 * They get a listener of their own, bound to loopback, because the public listener is what a
 * tunnel exposes: a tunnel daemon connects from 127.0.0.1, so no address check on the public
 * listener can tell the owner from the Internet.
 */
import { type Checker, type JsonObject, knownKeys, object, string } from "./check.ts";
import { hostPortProblem, isLoopbackHost, type Listen, parseHostPort } from "./hosts.ts";

export interface AdminSettings {
  /** The admin listener's address: always loopback. */
  listen: Listen;
}

export const ADMIN_KEYS = ["listen"] as const;

/** The default: the public listen port + 1 on 127.0.0.1 (an OS-chosen port when that is 0). */
export function defaultAdmin(listen: Listen): AdminSettings | null {
  if (listen.port === 65535) return null;
  return { listen: { hostname: "127.0.0.1", port: listen.port === 0 ? 0 : listen.port + 1 } };
}

/** Reads `admin`; `listen` is the public listen address (undefined when it was invalid). */
export function parseAdmin(
  ck: Checker,
  root: JsonObject,
  listen: Listen | undefined,
): AdminSettings | undefined {
  const section = object(ck, root.admin, "admin") ?? {};
  knownKeys(ck, section, "admin", ADMIN_KEYS);
  const text = string(ck, section, "listen", "admin", { nonEmpty: true });
  if (text === undefined) {
    if (!listen) return undefined;
    return defaultAdmin(listen) ?? ck.fail(
      "admin.listen",
      'the default (the listen port + 1) is beyond 65535: set it, e.g. "127.0.0.1:9090"',
    );
  }
  const parsed = parseHostPort(text);
  if (!parsed) {
    return ck.fail("admin.listen", hostPortProblem(text));
  }
  if (!isLoopbackHost(parsed.hostname)) {
    return ck.fail(
      "admin.listen",
      `"${parsed.hostname}" is not a loopback address: the owner's endpoints (metrics, health ` +
        `details) are served to this machine only; use 127.0.0.1, ::1 or localhost`,
    );
  }
  if (listen && parsed.port !== 0 && parsed.port === listen.port) {
    return ck.fail("admin.listen", `port ${parsed.port} is the public listen port; pick another`);
  }
  return { listen: parsed };
}
