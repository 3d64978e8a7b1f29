/** `main.ts serve`: starts the proxy for a loaded config and stops it cleanly on a signal. */
import type { LoadedConfig } from "./config/load.ts";
import { ConfigError } from "./config/check.ts";
import { coalesce } from "./coalesce.ts";
import { droppedLogLines, flushLogs, type Logger } from "./log.ts";
import { type Identity, Router } from "./router/router.ts";
import { McpService } from "./mcp/service.ts";
import {
  type App,
  createHandler,
  createInternalHandler,
  listenHosts,
  listenOrigins,
} from "./server.ts";
import { ADMIN_CONNECTIONS, startAdmin } from "./admin.ts";
import { Edge } from "./edge/edge.ts";
import { rangeDocumentUrls } from "./edge/ranges.ts";
import { createAccessLog } from "./edge/access-log.ts";
import { auditLogger, Metrics, refusalLogger } from "./metrics.ts";
import { VERSION } from "./version.ts";
import { printStart } from "./start-banner.ts";
import type { Store } from "./store/store.ts";
import type { SpawnChild } from "./children/child.ts";
import { openStore, startLogs } from "./startup.ts";
import { OAuthService } from "./oauth/service.ts";
import { serveHttp } from "./http-server.ts";
import { connectionBudget, type CountFreeFiles, reservedDescriptors } from "./open-files.ts";
import { authenticateBearer } from "./oauth/bearer.ts";
import type { Instances } from "./instances/instances.ts";
import { lazyImport } from "./lazy.ts";
import type { InstancesSettings } from "./config/instances-schema.ts";

export { StartupError } from "./startup.ts";

export interface RunningProxy {
  /** Origin the proxy listens on, e.g. http://127.0.0.1:8080. */
  origin: string;
  /** Origin of the owner's loopback listener (/metrics, /healthz details), e.g. http://127.0.0.1:8081. */
  admin: string;
  /** Stops accepting, ends streams, stops every child (and its process group). */
  shutdown(): Promise<void>;
  /** Applies a re-read config (SIGHUP): the allow-list changes without dropping sessions. */
  reload(loaded: LoadedConfig): Promise<void>;
  finished: Promise<void>;
  /** The proxy's log (its level and format come from the config). */
  log: Logger;
}

const ANONYMOUS = { key: "anonymous" } as const;

/**
 * What SIGHUP runs: reads the config again with `load` and applies it to the running proxy; a
 * config that does not load is logged and the running one kept. Reloads never overlap: one asked
 * for during a reload runs once more after it (the last one wins).
 */
export function reloader(
  load: () => Promise<LoadedConfig>,
  proxy: () => RunningProxy | undefined,
): () => Promise<void> {
  return coalesce(() =>
    load().then((next) => proxy()?.reload(next)).catch((error) => {
      const problems = error instanceof ConfigError ? error.problems.join("; ") : String(error);
      proxy()?.log.error("config reload failed, keeping the running config", { problems });
    })
  );
}

/** Where `startProxy` writes (the process's stdout and stderr unless given), and its probe. */
export interface ProxyStartOptions {
  /** The start-up lines (one URL per server): console.log by default. */
  print?: (line: string) => void;
  /** Every log line (log, audit, an access log to stderr), newline included: stderr by default. */
  write?: (line: string) => void;
  /**
   * Counts the process's free file descriptors up to `enough` (`freeFileDescriptors` by default,
   * which opens that many): a test process running many proxies measures once.
   */
  countFreeFiles?: CountFreeFiles;
  /** Starts a child process (`Child.spawn` by default). */
  spawnChild?: SpawnChild;
}

/** Starts the HTTP server and the children; prints one URL line per server. */
export async function startProxy(
  loaded: LoadedConfig,
  options: ProxyStartOptions = {},
): Promise<RunningProxy> {
  const { config } = loaded;
  const print = options.print ?? console.log;
  const { log, audit, access } = await startLogs(loaded, options.write);
  const metrics = new Metrics({ logLinesDropped: droppedLogLines });
  const router = new Router({
    servers: config.servers,
    limits: config.limits,
    log,
    version: VERSION,
    onComplete: auditLogger(metrics, audit),
    onRefusal: refusalLogger(metrics, audit),
    spawn: options.spawnChild,
  });
  const mcp = new McpService(router, config.limits, log);
  mcp.merged = mergedHost(config, router, log, () => oauth);
  const allowedOrigins = new Set(config.allowedOrigins);
  let store: Store | undefined;
  if (config.auth || config.instances || needsStore(config)) {
    store = await openStore(config);
  }
  if (store) mcp.requestStateSecret = await store.key("request-state");
  const instances = config.instances && store
    ? await joinInstances(config.instances, store, mcp, log)
    : undefined;
  const edge = new Edge(config, { log, store });
  const oauth = store ? await startOAuth(config, { store, log, metrics }) : undefined;
  if (oauth) allowedOrigins.add(config.auth!.origin);
  const app: App = {
    config,
    router,
    mcp,
    log,
    allowedOrigins,
    oauth,
    edge,
    metrics,
    access: createAccessLog(access),
    authenticate: oauth ? (req, server) => authenticateBearer(oauth, req, server) : () => ANONYMOUS,
  };
  const handler = createHandler(app);
  await edge.start();
  await instances?.start(createInternalHandler(app), {
    headerTimeoutMs: config.limits.headerTimeoutMs,
    maxConnections: config.limits.maxConnections,
  });
  const control = store ? watchControlEpoch(store, () => oauth?.invalidate(), log) : undefined;
  const admin = startAdmin(config.admin.listen, {
    servers: config.servers,
    router,
    mcp,
    edge,
    metrics,
    instances,
    store: store?.description,
  }, { log, headerTimeoutMs: config.limits.headerTimeoutMs });
  const parts = { log, edge, allowedOrigins };
  const { server, origin } = listenPublic(config, handler, parts, options.countFreeFiles);
  log.info("listening", {
    origin,
    admin: admin.origin,
    servers: config.servers.length,
    version: VERSION,
  });
  // The start-up lines (warnings included) come out before the URLs, not after them.
  await flushLogs(1000);
  printStart(print, config, origin, admin.origin);
  router.start();
  mcp.start();
  const shutdown = once(() =>
    stopProxy({ log, listeners: [server, admin], instances, router, mcp, edge, control, store })
  );
  const reload = (next: LoadedConfig) => applyReload(next, { log, edge, oauth, router, mcp });
  return { origin, admin: admin.origin, shutdown, reload, finished: server.finished, log };
}

/**
 * What the merged endpoint's sessions need, when the config serves it (`merged.enabled`): the
 * servers the person may use (their own `allow`), asked at every request from the allow-lists'
 * caches (`mayUseServer`, re-checked as on use of `/mcp/<name>`).
 */
function mergedHost(
  config: LoadedConfig["config"],
  router: Router,
  log: Logger,
  oauth: () => OAuthService | undefined,
): McpService["merged"] {
  if (!config.merged?.enabled) return null;
  const servers = async (identity: Identity) => {
    const login = oauth();
    if (!login || identity.userId === undefined || identity.login === undefined) {
      return config.servers;
    }
    const person = { userId: identity.userId, login: identity.login };
    const may = await Promise.all(config.servers.map((s) => login.mayUseServer(person, s.name)));
    return config.servers.filter((_, i) => may[i]);
  };
  return { router, log, settings: config.merged, version: VERSION, servers };
}

/**
 * The login service (OAuth 2.1 authorization server in front of GitHub) when the config has
 * login; the allowed GitHub logins resolve to ids in the background.
 */
async function startOAuth(
  config: LoadedConfig["config"],
  { store, log, metrics }: { store: Store; log: Logger; metrics: Metrics },
): Promise<OAuthService | undefined> {
  if (!config.auth) return undefined;
  const oauth = await OAuthService.create(config.auth, config.servers, {
    store,
    log,
    bodyTimeoutMs: config.limits.bodyTimeoutMs,
    metrics,
    legacySse: config.legacySse,
    merged: config.merged?.enabled ?? false,
  });
  oauth.policy.resolveLogins().then(() => oauth.access.resolveLogins()).catch((error) =>
    log.warn("cannot resolve logins", { error: String(error) })
  );
  return oauth;
}

/**
 * The public listener on `listen`; its own addresses become allowed origins and hosts. Returns
 * the server and the origin it listens on.
 */
function listenPublic(
  config: LoadedConfig["config"],
  handler: (req: Request, ip: string) => Promise<Response> | Response,
  { log, edge, allowedOrigins }: { log: Logger; edge: Edge; allowedOrigins: Set<string> },
  countFreeFiles?: CountFreeFiles,
) {
  const server = serveHttp({
    hostname: config.listen.hostname,
    port: config.listen.port,
    headerTimeoutMs: config.limits.headerTimeoutMs,
    maxConnections: connectionLimit(config, log, countFreeFiles),
    log,
  }, (req, remote) => handler(req, remote.hostname));
  const { hostname, port } = server.addr;
  for (const origin of listenOrigins(hostname, port)) allowedOrigins.add(origin);
  edge.listening(listenHosts(hostname, port));
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return { server, origin: `http://${host}:${port}` };
}

/**
 * Leaves the instance directory (the other instances answer this one's sessions from then on),
 * stops accepting on both listeners, answers the open calls ("proxy shutting down") before the
 * streams end, stops every child and waits up to 2 s for the connections to finish.
 */
async function stopProxy(parts: {
  log: Logger;
  listeners: { shutdown(): Promise<void> }[];
  instances?: Instances;
  router: Router;
  mcp: McpService;
  edge: Edge;
  /** Stops watching the control epoch. */
  control?: () => void;
  store?: Store;
}): Promise<void> {
  const { log, router, mcp, edge, store } = parts;
  log.info("shutting down");
  const left = parts.instances?.stop();
  const closed = Promise.all(parts.listeners.map((l) => l.shutdown()));
  const children = router.close();
  mcp.shutdown();
  edge.stop();
  parts.control?.();
  await children;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise((resolve) => timer = setTimeout(resolve, 2000));
  await Promise.race([Promise.all([closed, left]), late]);
  clearTimeout(timer);
  await store?.close();
}

/** Several instances (./instances/), loaded only for a config with `instances`. */
const instancesModule = lazyImport("several instances", () => import("./instances/instances.ts"));

/**
 * Takes part among several instances: session ids and request states name this instance, and
 * requests for other instances' sessions and calls are forwarded to them.
 */
async function joinInstances(
  settings: InstancesSettings,
  store: Store,
  mcp: McpService,
  log: Logger,
): Promise<Instances> {
  const { Instances } = await instancesModule();
  const instances = await Instances.create(settings, store, log);
  mcp.instances = instances;
  return instances;
}

/**
 * Owner commands (`main.ts grants revoke`, `clients revoke`) change the store from another
 * process and bump the control epoch; within ~200 ms the proxy drops its cached checks and
 * acknowledges, and the command waits for that before it returns.
 */
function watchControlEpoch(store: Store, invalidate: () => void, log: Logger): () => void {
  let seen: number | undefined;
  return store.watchEpoch((epoch) => {
    if (seen !== undefined) {
      invalidate();
      log.info("the store changed (owner command); cached checks dropped", { epoch });
    }
    seen = epoch;
    store.acknowledge(epoch, Date.now()).catch((error) =>
      log.warn("cannot acknowledge the control epoch", { error: String(error) })
    );
  }, (error) => log.warn("cannot read the control epoch", { error: String(error) }));
}

/**
 * The connection cap: `limits.maxConnections`, lowered to fit the process's open-file limit
 * (measured now, logged), so that running out of descriptors refuses clients instead of
 * failing children, the store or the listener.
 */
function connectionLimit(
  config: LoadedConfig["config"],
  log: Logger,
  count?: CountFreeFiles,
): number {
  const configured = config.limits.maxConnections;
  const reserve = reservedDescriptors(config.limits.childrenTotal, ADMIN_CONNECTIONS);
  const budget = connectionBudget(configured, reserve, count);
  if (budget.free === null) {
    log.warn("cannot measure the open-file limit; using limits.maxConnections as is", {
      maxConnections: configured,
    });
    return configured;
  }
  const free = budget.atLeast ? { free_at_least: budget.free } : { free: budget.free };
  log.info("open files", { ...free, reserved: reserve, maxConnections: budget.max });
  // A cap a little under the configured one is normal (a default limit of 1024); far under, say so.
  if (budget.max < configured / 2) {
    log.warn(
      "the open-file limit is below limits.maxConnections plus what children need; raise it " +
        "(ulimit -n, or LimitNOFILE= in the systemd unit) to accept more connections",
      { maxConnections: budget.max, configured },
    );
  }
  return budget.max;
}

/** Downloaded range lists keep their last good copy in the store. */
function needsStore(config: LoadedConfig["config"]): boolean {
  return rangeDocumentUrls(config.network.allow, config.network.rangeSources).length > 0;
}

/** SIGHUP: the allow-list and the network section change without dropping sessions. */
async function applyReload(
  next: LoadedConfig,
  { log, edge, oauth, router, mcp }: {
    log: Logger;
    edge: Edge;
    oauth?: OAuthService;
    router: Router;
    mcp: McpService;
  },
): Promise<void> {
  if (oauth && next.config.auth) {
    await oauth.reloadAllowList(next.config.auth, next.config.servers);
    mcp.recheckMerged();
    log.info("allow-list reloaded");
  }
  await edge.reload(next.config.network);
  log.info("network section reloaded");
  router.reloadPolicies(next.config.servers);
  log.info("filters reloaded");
  log.info(
    "config reloaded; changes other than allow, filters and network apply after a restart",
  );
}

/** `run` the first time, the same promise after. */
function once(run: () => Promise<void>): () => Promise<void> {
  let started: Promise<void> | undefined;
  return () => started ??= run();
}
