/**
 * The HTTP/1.1 listener with its own accept loop, so that connections are counted and timed:
 * `Deno.serve` accepts without limit, has no header-read timeout, and ends its loop (and with it
 * the proxy) when `accept` fails with "too many open files". Here
 * - a connection without a request in progress (headers not complete yet, or an idle
 *   keep-alive) is closed after `headerTimeoutMs` (the slow-header defence of RFC 9112 §9.3's
 *   persistent-connection management, as in nginx's `client_header_timeout`);
 * - past `maxConnections` a new connection gets one `503` with `Connection: close`;
 * - an accept error is logged and retried with a short back-off: it never ends the listener.
 * Each accepted connection is served by Deno's own HTTP stack
 * (`Deno[Deno.internal].serveHttpOnConnection`, used by Deno's `node:http`); where that is
 * missing, plain `Deno.serve` runs without the two limits and says so.
 */
import type { Logger } from "./log.ts";

export type Handler = (req: Request, remote: Deno.NetAddr) => Response | Promise<Response>;

export interface HttpServerOptions {
  hostname: string;
  port: number;
  /** Time a connection may spend without a request in progress. */
  headerTimeoutMs: number;
  /** Open connections at most; more are answered 503 and closed. */
  maxConnections: number;
  log: Logger;
  /** Opens the listening socket (Deno.listen; tests pass one whose accept fails). */
  listen?: (options: Deno.TcpListenOptions) => Deno.Listener;
}

export interface HttpServer {
  addr: Deno.NetAddr;
  /** Open connections now. */
  connections(): number;
  /** Stops accepting and closes connections once their requests are done. */
  shutdown(): Promise<void>;
  /** Settles when the server has shut down. */
  finished: Promise<void>;
}

interface HttpServerHandle {
  finished: Promise<void>;
  shutdown(): Promise<void>;
}

type ServeOnConnection = (
  conn: Deno.Conn,
  signal: AbortSignal | undefined,
  handler: (req: Request, info: { completed?: Promise<void> }) => Response | Promise<Response>,
  onError: (error: unknown) => Response,
  onListen: () => void,
) => HttpServerHandle;

/** Deno's per-connection server, or undefined on a Deno that does not have it. */
function serveOnConnection(): ServeOnConnection | undefined {
  const internal = (Deno as unknown as Record<symbol, Record<string, unknown>>)[
    (Deno as unknown as { internal: symbol }).internal
  ];
  const fn = internal?.serveHttpOnConnection;
  return typeof fn === "function" ? fn as ServeOnConnection : undefined;
}

const REFUSAL = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n" +
    'connection: close\r\ncontent-length: 32\r\n\r\n{"error":"too_many_connections"}',
);
const REPORT_EVERY_MS = 10_000;
const MAX_BACKOFF_MS = 1000;
const MAX_LEAVING = 16;

/** Listens on `hostname:port` and serves `handler` within the connection limits. */
export function serveHttp(options: HttpServerOptions, handler: Handler): HttpServer {
  const perConnection = serveOnConnection();
  if (!perConnection) return fallback(options, handler);
  const server = new ConnectionServer(options, handler, perConnection);
  return {
    addr: server.addr,
    connections: () => server.open.size,
    shutdown: () => server.shutdown(),
    finished: server.finished,
  };
}

/** One accepted connection: whether a request is in progress, and since when it is idle. */
interface Connection {
  active: number;
  idleSince: number;
  closing: boolean;
  /** Counted in `#leaving` (closed while idle, to make room or after the timeout). */
  leaving: boolean;
  close(): void;
}

class ConnectionServer {
  readonly open = new Set<Connection>();
  readonly addr: Deno.NetAddr;
  readonly finished: Promise<void>;
  #listener: Deno.Listener;
  #closing = false;
  #drained = () => {};
  #stopping: Promise<void> | undefined;
  #loop: Promise<void>;
  /** Connections being answered 503 or closed to make room: each still holds a descriptor. */
  #leaving = 0;
  #refused: Reporter;
  #evicted: Reporter;
  #failures: Reporter;

  constructor(
    readonly options: HttpServerOptions,
    readonly handler: Handler,
    readonly serveOn: ServeOnConnection,
  ) {
    const { log } = options;
    const listen = options.listen ?? Deno.listen;
    this.#listener = listen({ hostname: options.hostname, port: options.port });
    this.addr = this.#listener.addr as Deno.NetAddr;
    this.finished = new Promise<void>((resolve) => this.#drained = resolve);
    const limit = { limit: options.maxConnections };
    this.#refused = reporter(log, "connection limit reached: new connections answered 503", limit);
    this.#evicted = reporter(log, "connection limit reached: idle connections closed", limit);
    this.#failures = reporter(log, "cannot accept connections; retrying", {});
    this.#loop = this.#acceptLoop();
  }

  shutdown(): Promise<void> {
    return this.#stopping ??= (async () => {
      this.#closing = true;
      try {
        this.#listener.close();
      } catch { /* already closed */ }
      await this.#loop;
      if (this.open.size === 0) this.#drained();
      for (const c of this.open) c.close();
      await this.finished;
    })();
  }

  async #acceptLoop(): Promise<void> {
    let backoff = 10;
    while (!this.#closing) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closing) break;
        // EMFILE and friends: the pending connection waits in the backlog until a slot frees.
        this.#failures.count({ error: String(error) });
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        continue;
      }
      backoff = 10;
      if (this.open.size - this.#leaving < this.options.maxConnections) this.#track(conn);
      else if (this.#leaving < MAX_LEAVING && this.#evictIdlest()) this.#track(conn);
      else this.#refuse(conn);
    }
  }

  /**
   * At the cap, the connection idle the longest (no request in progress: slow headers or an
   * idle keep-alive) makes room, so that holding connections open cannot lock clients out.
   */
  #evictIdlest(): boolean {
    let idlest: Connection | undefined;
    for (const c of this.open) {
      if (c.active === 0 && !c.closing && (!idlest || c.idleSince < idlest.idleSince)) idlest = c;
    }
    if (!idlest) return false;
    this.#evicted.count();
    idlest.close();
    return true;
  }

  /** Answers 503 (or, in a burst, just closes), holding the descriptor for a moment only. */
  #refuse(conn: Deno.Conn): void {
    this.#refused.count();
    if (this.#leaving >= MAX_LEAVING) return conn.close();
    this.#leaving++;
    conn.write(REFUSAL).catch(() => {}).finally(() => {
      this.#leaving--;
      conn.close();
    });
  }

  #track(conn: Deno.Conn): void {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const { log } = this.options;
    const c: Connection = {
      active: 0,
      idleSince: performance.now(),
      closing: false,
      leaving: false,
      // A graceful close: a request in progress is finished first; a partial one is dropped.
      // (Not an abort signal: its listener throws once the peer has already gone.)
      close: () => {
        if (c.closing) return;
        c.closing = true;
        if (c.active === 0) {
          c.leaving = true;
          this.#leaving++;
        }
        served.shutdown().catch(() => {});
      },
    };
    const idle = new IdleTimer(c, this.options.headerTimeoutMs);
    const served = this.serveOn(conn, undefined, (req, info) => {
      c.active++;
      // `completed` settles when the response was sent or the client went away.
      info.completed?.finally(() => {
        if (--c.active > 0 || c.closing) return;
        c.idleSince = performance.now();
        idle.arm();
      }).catch(() => {});
      return this.handler(req, remote);
    }, (error) => {
      log.error("request failed", { error: String(error) });
      return new Response('{"error":"server_error"}', { status: 500 });
    }, () => {});
    this.open.add(c);
    idle.arm();
    served.finished.catch(() => {}).finally(() => {
      idle.stop();
      if (c.leaving) this.#leaving--;
      this.open.delete(c);
      if (this.#closing && this.open.size === 0) this.#drained();
    });
  }
}

/**
 * Closes a connection once it has had no request in progress for `timeoutMs`. The timer is not
 * set again for every request of a keep-alive connection (a timer object per request): when it
 * fires it looks at the connection, and waits on for the rest of the time if a request came
 * since; while one is in progress it stops, and the end of the request sets it again.
 */
class IdleTimer {
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly connection: Connection, readonly timeoutMs: number) {}

  /** Makes sure the timer runs (the connection just became idle). */
  arm(): void {
    this.#timer ??= setTimeout(() => this.#fire(), this.timeoutMs);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(): void {
    this.#timer = undefined;
    const c = this.connection;
    if (c.active > 0 || c.closing) return;
    const left = this.timeoutMs - (performance.now() - c.idleSince);
    if (left > 1) this.#timer = setTimeout(() => this.#fire(), left);
    else c.close();
  }
}

/** Counts an event and logs it at most once per REPORT_EVERY_MS, with the count since. */
interface Reporter {
  count(fields?: Record<string, string>): void;
}

function reporter(log: Logger, message: string, fixed: Record<string, number>): Reporter {
  let last = -Infinity;
  let since = 0;
  return {
    count(fields: Record<string, string> = {}) {
      since++;
      const now = performance.now();
      if (now - last < REPORT_EVERY_MS) return;
      log.warn(message, { ...fixed, ...fields, count: since });
      last = now;
      since = 0;
    },
  };
}

function fallback(options: HttpServerOptions, handler: Handler): HttpServer {
  options.log.warn(
    "this Deno cannot serve single connections: limits.maxConnections and " +
      "limits.headerTimeout are not enforced",
  );
  let addr!: Deno.NetAddr;
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: (a) => addr = a,
  }, (req, info) => handler(req, info.remoteAddr));
  return {
    addr,
    connections: () => 0,
    shutdown: () => server.shutdown(),
    finished: server.finished,
  };
}
