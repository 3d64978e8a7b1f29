/**
 * `main.ts check`: validates the config as `serve` would (errors exit 2), then prints each
 * server's URL, the GitHub callback URL and the permission flags, and warns about what would
 * bite later: a public URL that is not https, a client secret written in the file, no source-IP
 * allow-list, a command that is not on PATH, a data directory this user cannot write, a tunnel
 * preset with a non-loopback listen, a public URL reached through a tunnel without trusted
 * proxies. A data directory that is a file or cannot be created is an error, as at start.
 */
import type { PostgresSettings } from "../config/store-schema.ts";
import { derivePermissions } from "../permissions/derive.ts";
import { type Config, isLoopbackHost } from "../config/schema.ts";
import { formatHostPort } from "../config/hosts.ts";
import { endpointPaths, MERGED_SERVER } from "../config/merged-schema.ts";
import type { AllowList } from "../config/auth-schema.ts";
import { type CliConfig, configFile, type Io, loadCliConfig, notCapable } from "./common.ts";
import { commandFlags, fallbackFlags } from "./flags.ts";
import { CHECK_SYNTAX, parseCommandLine } from "./options.ts";
import { findCommand } from "./which.ts";
import { TRUSTED_PROXY_PRESETS } from "../config/network-rules.ts";
import { tunnelAdvice } from "../config/advice.ts";
import { describePolicy } from "../policy/policy.ts";

const CHECK_USAGE = `Usage: main.ts check [--config FILE] [--listen HOST:PORT] [--print-flags]

Validates the config (mistakes exit 2, as "serve" would), prints each server's URL, the GitHub
OAuth App callback URL and the permission flags "deno task start" uses, and warns about what
would stop clients later. Exit codes: 0 valid (warnings included), 2 config errors.

Options:
  -c, --config FILE   config file (default: $MCP_PROXY_CONFIG, else ./config.json)
  -l, --listen ADDR   check with this address instead of the config's "listen" (as serve's
                      --listen)
      --print-flags   print the Deno flags check needs for this config, and exit
  -h, --help          show this help

Deno flags ("deno task check-config" passes exactly these; --print-flags prints them):
  --allow-read   the config, the data directory, the PATH directories (to find the commands)
  --allow-write  the data directory (a temporary file is created there and removed)
  --allow-env    PATH, MCP_PROXY_CONFIG and the variables the config references`;

/** Runs `check`; returns the exit code. */
export async function runCheck(args: string[], io: Io): Promise<number> {
  let values;
  try {
    ({ values } = parseCommandLine(args, CHECK_SYNTAX));
  } catch (error) {
    io.err(`error: ${(error as Error).message}\n\n${CHECK_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(CHECK_USAGE);
    return 0;
  }
  if (values["print-flags"]) {
    const quiet = { ...io, err: () => {} };
    const cfg = await loadCliConfig(values.config, quiet, values.listen);
    const flags = cfg === 2
      ? fallbackFlags(configFile(values.config, io))
      : commandFlags("check", cfg, { cwd: io.cwd, path: io.env("PATH") });
    io.out(flags.join(" "));
    return 0;
  }
  const cfg = await loadCliConfig(values.config, io, values.listen);
  if (cfg === 2) return 2;
  const { config } = cfg.loaded;
  // What the proxy would fail on at start is an error here too.
  const data = config.demo || config.store ? undefined : await probeDataDir(config.dataDir);
  if (data?.error) {
    io.err(`config error (${cfg.path}):\n  dataDir ${config.dataDir}: ${data.error}`);
    return 2;
  }
  const store = config.store ? await describeDatabase(config.store) : undefined;
  if (store?.error) {
    io.err(`config error (${cfg.path}):\n  store.url ${config.store!.redacted}: ${store.error}`);
    return 2;
  }
  for (const notice of cfg.loaded.notices) io.out(`config notice: ${notice}`);
  if (config.demo) {
    io.out(`${cfg.path}: no config file; "deno task start" would serve the bundled demo:`);
  } else {
    io.out(`${cfg.absolute}: valid`);
  }
  if (store) io.out(store.line!);
  io.out("");
  printServers(io, config);
  io.out("");
  io.out(`permission flags ("deno task start" runs the proxy with exactly these):`);
  io.out(`  ${derivePermissions(cfg.loaded, config.source ?? cfg.absolute).join(" ")}`);
  io.out("");

  const warnings = config.demo ? [] : findWarnings(cfg, io);
  if (data?.warning) warnings.push(`dataDir ${config.dataDir}: ${data.warning}`);
  for (const warning of warnings) io.out(`warning: ${warning}`);
  io.out(
    warnings.length === 0
      ? "no warnings"
      : `${warnings.length} warning${warnings.length === 1 ? "" : "s"}`,
  );
  return 0;
}

function printServers(io: Io, config: Config): void {
  const { hostname, port } = config.listen;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const local = `http://${host}:${port === 0 ? "<port chosen at start>" : port}`;
  const width = Math.max(...endpointPaths(config).map((s) => s.name.length));
  const merged = (base: string) => {
    if (!config.merged?.enabled) return;
    io.out(`  ${MERGED_SERVER.padEnd(width)}  ${base}/mcp  (every server the person may use)`);
  };
  if (config.auth) {
    io.out("servers (the URLs to paste into ChatGPT and Claude):");
    for (const s of config.servers) {
      io.out(`  ${s.name.padEnd(width)}  ${config.auth.publicUrl}/mcp/${s.name}`);
      if (s.allow) io.out(`  ${"".padEnd(width)}  only for: ${describeAllow(s.allow)}`);
      printFilters(io, s, width);
    }
    merged(config.auth.publicUrl);
    io.out(`GitHub OAuth App callback URL: ${config.auth.publicUrl}/auth/callback`);
    io.out(`GitHub OAuth App homepage URL: ${config.auth.publicUrl}`);
  } else {
    io.out(
      config.demo
        ? "servers (local, without login):"
        : `servers (local, without login: serve it with --no-auth):`,
    );
    for (const s of config.servers) {
      io.out(`  ${s.name.padEnd(width)}  ${local}/mcp/${s.name}`);
      printFilters(io, s, width);
    }
    merged(local);
    io.out(`login: not configured (no "github" section), so no GitHub callback URL`);
  }
  const admin = formatHostPort(config.admin.listen).replace(/:0$/, ":<port chosen at start>");
  const owner = `http://${admin}`;
  io.out(`owner endpoints (this machine only): ${owner}/metrics, ${owner}/healthz`);
}

/** A server's `allow` in one line, as it narrows the global allow-list. */
function describeAllow(allow: AllowList): string {
  const users = [...allow.logins, ...allow.ids.map(String)];
  const parts = [
    users.length ? `users ${users.join(", ")}` : "",
    allow.orgs.length ? `orgs ${allow.orgs.join(", ")}` : "",
    allow.teams.length ? `teams ${allow.teams.map((t) => `${t.org}/${t.slug}`).join(", ")}` : "",
  ];
  return `${parts.filter(Boolean).join("; ")} (and on the global allow-list)`;
}

/** A filtered server's rules, under its URL. */
function printFilters(io: Io, server: Config["servers"][number], width: number): void {
  if (server.policy) io.out(`  ${"".padEnd(width)}  filters: ${describePolicy(server.policy)}`);
}

/** Everything worth a warning in a valid config (the data directory is probed apart). */
function findWarnings(cfg: CliConfig, io: Io): string[] {
  const { config } = cfg.loaded;
  const warnings: string[] = [];
  if (cfg.loaded.literalSecret) {
    const name = cfg.unsetSecrets.find((s) => s.key === "github.clientSecret")?.name ??
      "GITHUB_CLIENT_SECRET";
    warnings.push(
      `github.clientSecret is written in the file itself: whoever reads ${cfg.absolute} (or a ` +
        `backup or paste of it) can act as your OAuth App. Write "\${${name}}" there and set ` +
        `${name} when the proxy starts (${name}=… deno task start)`,
    );
  }
  for (const { key, name } of cfg.unsetSecrets) {
    warnings.push(
      `${key}: the environment variable ${name} is not set here; ` +
        `set it when you start the proxy (${name}=… deno task start), or it refuses to start`,
    );
  }
  if (config.auth) {
    const url = new URL(config.auth.publicUrl);
    if (url.protocol !== "https:") {
      warnings.push(
        `publicUrl ${config.auth.publicUrl} is not https: only clients on this machine can use ` +
          `it; ChatGPT and Claude need the https address of a tunnel (docs/tunnels.md)`,
      );
    }
    if (config.network.allow.length === 0) {
      warnings.push(
        `no network.allow list: any address on the internet may call /mcp, /token, /register ` +
          `and /revoke (a token is still needed); consider ["openai", "anthropic", your own ` +
          `network] (docs/tunnels.md)`,
      );
    }
    warnings.push(...tunnelAdvice(config));
  }
  for (const server of config.servers) {
    const cwd = server.cwd ?? io.cwd;
    const path = server.env.PATH ?? io.env("PATH");
    const found = findCommand(server.command, { cwd, path });
    if ("missing" in found) {
      warnings.push(`mcpServers.${server.name}.command "${server.command}": ${found.missing}`);
    } else if ("unknown" in found) {
      warnings.push(
        `mcpServers.${server.name}.command "${server.command}": not checked: ${found.unknown}`,
      );
    }
  }
  const preset = typeof config.network.trustedProxies === "string" &&
      (TRUSTED_PROXY_PRESETS as readonly string[]).includes(config.network.trustedProxies)
    ? config.network.trustedProxies
    : undefined;
  if (preset && !isLoopbackHost(config.listen.hostname)) {
    warnings.push(
      `network.trustedProxies "${preset}" believes forwarded headers only from loopback peers, ` +
        `but listen is ${config.listen.hostname}: the proxy can be reached around the tunnel, ` +
        `and a tunnel daemon on another machine is not believed (every client then looks like ` +
        `it). Listen on 127.0.0.1, or list the proxy's own addresses as CIDRs instead.`,
    );
  }
  warnings.push(...unreachableUsers(config));
  return warnings;
}

/** Connects to the store's database (changing nothing) and says what the proxy will find. */
async function describeDatabase(
  settings: PostgresSettings,
): Promise<{ error?: string; line?: string }> {
  const { probePostgres } = await import("../store/postgres-client.ts");
  const found = await probePostgres(settings);
  if ("error" in found) return { error: found.error };
  const schema = found.schema === 0
    ? "empty: the proxy creates its tables at start"
    : found.schema > found.latest
    ? `schema version ${found.schema}, newer than this proxy's ${found.latest}: it would refuse it`
    : `schema version ${found.schema} of ${found.latest}`;
  if (found.schema > found.latest) return { error: schema };
  return { line: `store: PostgreSQL ${settings.redacted} (answers; ${schema})` };
}

/**
 * Users of a server's `allow` the global allow-list can never admit (a server's list only
 * narrows it). Decidable only when the global list has users alone, written the same way.
 */
function unreachableUsers(config: Config): string[] {
  const global = config.auth?.allow;
  if (!global || global.orgs.length > 0 || global.teams.length > 0) return [];
  return config.servers.flatMap((s) => {
    if (!s.allow) return [];
    const ids = global.logins.length > 0
      ? []
      : s.allow.ids.filter((id) => !global.ids.includes(id));
    const logins = global.ids.length > 0
      ? []
      : s.allow.logins.filter((login) => !global.logins.includes(login));
    return [...logins, ...ids.map(String)].map((who) =>
      `mcpServers.${s.name}.allow.users: ${who} is not on the global allow-list, so it can ` +
      `never use ${s.name} (a server's allow only narrows the global one)`
    );
  });
}

/**
 * Tries what the proxy will do with its data directory: write a file in it (removed at once),
 * or, when it does not exist yet, create it (removed again). A file there, or a path that cannot
 * be a folder, is an error; what may differ for the proxy's own user is a warning.
 */
async function probeDataDir(dir: string): Promise<{ error?: string; warning?: string }> {
  let created = false;
  try {
    await Deno.mkdir(dir, { mode: 0o700 });
    created = true;
  } catch (error) {
    if (notCapable(error)) return { warning: notTested(dir) };
    if (error instanceof Deno.errors.NotFound) {
      return {
        warning: "neither it nor its parent folder exists; the proxy creates both at start if " +
          "it may (check cannot tell)",
      };
    }
    // Another user (the service's) may be allowed where this one is not.
    if (error instanceof Deno.errors.PermissionDenied) {
      return { warning: `cannot be created by this user: ${reason(error)}` };
    }
    if (!(error instanceof Deno.errors.AlreadyExists)) {
      return { error: `cannot be created: ${reason(error)}` };
    }
  }
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) {
      return { error: "is a file, not a directory: point dataDir at a folder (it is created)" };
    }
    const probe = await Deno.makeTempFile({ dir, prefix: ".mop-check-" });
    try {
      await Deno.writeTextFile(probe, "check\n");
    } finally {
      await Deno.remove(probe);
    }
    return {};
  } catch (error) {
    if (notCapable(error)) return { warning: notTested(dir) };
    return { warning: `not writable by this user: ${reason(error)}` };
  } finally {
    if (created) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
function notTested(dir: string): string {
  return `not tested: check has no permission to write there (run it with --allow-write=${dir})`;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
