/**
 * The one place that derives the Deno permission flags a config needs. `main.ts permissions`
 * prints them, `deno task start` runs the proxy with them, and the tests start the proxy under
 * test with exactly these flags, so the tests prove they are enough.
 */
import type { LoadedConfig } from "../config/load.ts";
import { formatHostPort, type Listen } from "../config/hosts.ts";
import { CONFIG_ENV } from "../config/load.ts";
import { CHILD_ENV_VARS } from "../children/environment.ts";
import { KILL_COMMAND } from "../children/group.ts";
import { DEFAULT_CIMD_HOSTS } from "../oauth/cimd.ts";
import { rangeDocumentUrls } from "../edge/ranges.ts";
import { PROBE_PATH } from "../open-files.ts";
import { storeAccess } from "../config/store-schema.ts";

/** Returns the minimal `deno run` flags for a loaded config read from `configPath`. */
export function derivePermissions(loaded: LoadedConfig, configPath: string): string[] {
  const { config } = loaded;
  // The public listener and the owner's loopback listener (admin.listen).
  const net = [config.listen, config.admin.listen].map(listenEntry);
  if (config.instances) {
    // The internal listener, and the other instances this one forwards to.
    const { listen, url, peers } = config.instances;
    net.push(listenEntry(listen), ...peers);
    if (url) net.push(netHost(url));
  }
  if (config.auth) {
    const { github, oauth } = config.auth;
    net.push(netHost(github.webUrl), netHost(github.apiUrl));
    net.push(...DEFAULT_CIMD_HOSTS, ...oauth.clientMetadataHosts);
  }
  const ranges = rangeDocumentUrls(config.network.allow, config.network.rangeSources);
  net.push(...ranges.map(netHost));
  // The open-file limit is measured by opening /dev/null (lib/open-files.ts).
  const read = [configPath, PROBE_PATH];
  const write: string[] = [];
  const env = unique([...CHILD_ENV_VARS, CONFIG_ENV, ...loaded.envRefs]);
  if (config.store) {
    // A PostgreSQL store: its host:port (or Unix socket) instead of the data directory.
    const access = storeAccess(config.store);
    net.push(...access.net);
    read.push(...access.socket);
    write.push(...access.socket);
    env.push(...access.env);
  } else if (!config.demo) {
    read.push(config.dataDir);
    write.push(config.dataDir);
  }
  // An access log of its own is appended to (no read needed).
  if (config.log.accessLog.to === "file") write.push(config.log.accessLog.path);
  const run = unique([...config.servers.map((s) => s.command), KILL_COMMAND]);
  const flags = [
    "--no-prompt",
    `--allow-net=${unique(net).join(",")}`,
    `--allow-read=${read.join(",")}`,
  ];
  if (write.length) flags.push(`--allow-write=${write.join(",")}`);
  flags.push(`--allow-run=${run.join(",")}`, `--allow-env=${unique(env).join(",")}`);
  // The store (Deno KV) holds login state and the last good copies of downloaded range lists.
  if (!config.store && (config.auth || ranges.length > 0)) flags.push("--unstable-kv");
  flags.push(...RUNTIME_FLAGS);
  return flags;
}

/**
 * Not permissions, but how the proxy is run everywhere (start, compile, tests, bench): a 1 MB
 * young generation keeps V8 from holding tens of megabytes of garbage between collections,
 * which matters on a Raspberry Pi and costs no measurable throughput (`deno task bench`); and
 * `request.signal` aborting only when a client goes away (Deno's corrected semantics, without
 * the legacy-abort warning that would be the one log line without a time and a level,
 * https://docs.deno.com/go/unstable-no-legacy-abort).
 */
export const RUNTIME_FLAGS = ["--v8-flags=--max-semi-space-size=1", "--unstable-no-legacy-abort"];

/**
 * The flags of the config-independent release executables: a documented default set of
 * launchers, the public GitHub and vendor hosts, and `config.json` / `data/` in the working
 * directory. A config-specific build (`deno task compile`) is narrower.
 */
export const RELEASE_LAUNCHERS = ["npx", "uvx", "node", "python3", "docker"];
export const RELEASE_FLAGS = [
  "--no-prompt",
  `--allow-net=127.0.0.1,localhost,[::1],github.com,api.github.com,${
    DEFAULT_CIMD_HOSTS.join(",")
  },openai.com`,
  `--allow-read=config.json,data,${PROBE_PATH}`,
  "--allow-write=data",
  `--allow-run=${[...RELEASE_LAUNCHERS, KILL_COMMAND].join(",")}`,
  `--allow-env=${[...CHILD_ENV_VARS, CONFIG_ENV, "GITHUB_CLIENT_SECRET", "MCP_PROXY_*"].join(",")}`,
  "--unstable-kv",
  ...RUNTIME_FLAGS,
];

/** The `--allow-net` entry for a listen address: the host alone when the port is chosen at start. */
function listenEntry(listen: Listen): string {
  const entry = formatHostPort(listen);
  return listen.port === 0 ? entry.slice(0, entry.lastIndexOf(":")) : entry;
}

/** The `--allow-net` entry for a URL: the host, with the port only when it is not the default. */
function netHost(url: string): string {
  const u = new URL(url);
  return u.port ? `${u.hostname}:${u.port}` : u.hostname;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
