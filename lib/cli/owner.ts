/**
 * The owner's controls, working on the store while the proxy runs: `main.ts clients list|revoke`
 * and `main.ts grants list|revoke`. A change bumps the store's control epoch; the running proxy
 * notices within a fraction of a second, drops its cached checks and acknowledges, and the
 * command waits (at most 2 s) for that acknowledgement before it says the change is in force.
 */
import { isCimdClientId } from "../oauth/cimd.ts";
import { Store } from "../store/kv.ts";
import type { ClientRecord, GrantRecord } from "../store/kv.ts";
import {
  type CliConfig,
  configFile,
  type Io,
  loadCliConfig,
  notCapable,
  printable,
  table,
  timestamp,
} from "./common.ts";
import { commandFlags, fallbackFlags } from "./flags.ts";

const DENO_FLAGS = `Deno flags ("deno task clients" and "deno task grants" pass exactly these;
--print-flags prints them): --unstable-kv, --allow-read of the config and the data directory,
--allow-write of the data directory, --allow-env of MCP_PROXY_CONFIG and the variables the
config references.`;

export const CLIENTS_USAGE = `Usage:
  main.ts clients list [--config FILE]        the registered clients, with their grants
  main.ts clients revoke ID [--config FILE]   delete a client: its grants (and tokens) are
                                              revoked and its approvals forgotten
  main.ts clients --print-flags               the Deno flags these commands need

Works on the store of a login config while the proxy runs; a revocation applies to the next
request. Exit codes: 0 done, 1 unknown id, 2 bad flags or config.
${DENO_FLAGS}`;

export const GRANTS_USAGE = `Usage:
  main.ts grants list [--user LOGIN_OR_ID] [--config FILE]
  main.ts grants revoke ID [--config FILE]
  main.ts grants revoke --all [--user LOGIN_OR_ID] [--config FILE]
  main.ts grants --print-flags

A grant is one sign-in of one GitHub user for one client; revoking it ends its access and
refresh tokens. Works on the store of a login config while the proxy runs; a revocation applies
to the next request. An id that starts with "-" may follow "--".
Exit codes: 0 done, 1 unknown id, 2 bad flags or config.
${DENO_FLAGS}`;

export const CONFIRMED = "revoked; the running proxy confirmed";
export const UNCONFIRMED =
  "revoked in the store; no running proxy confirmed it (it applies when the proxy next starts)";
const REASON = "revoked by the owner";

interface OwnerArgs {
  positionals: string[];
  config?: string;
  user?: string;
  all: boolean;
  printFlags: boolean;
  help: boolean;
}

/** Runs `clients` or `grants`; returns the exit code. */
export async function runOwner(
  kind: "clients" | "grants",
  args: string[],
  io: Io,
  options: { waitMs?: number } = {},
): Promise<number> {
  const usage = kind === "clients" ? CLIENTS_USAGE : GRANTS_USAGE;
  const parsed = parseOwnerArgs(args, kind === "grants");
  if (typeof parsed === "string") {
    io.err(`error: ${parsed}\n\n${usage}`);
    return 2;
  }
  if (parsed.help) {
    io.out(usage);
    return 0;
  }
  if (parsed.printFlags) {
    const cfg = await loadCliConfig(parsed.config, { ...io, err: () => {} });
    const flags = cfg === 2
      ? fallbackFlags(configFile(parsed.config, io))
      : commandFlags("owner", cfg, { cwd: io.cwd, path: undefined });
    io.out(flags.join(" "));
    return 0;
  }
  const [action, id, ...extra] = parsed.positionals;
  const shape = checkShape(kind, action, id, extra, parsed);
  if (shape) {
    io.err(`error: ${shape}\n\n${usage}`);
    return 2;
  }
  const cfg = await loadCliConfig(parsed.config, io);
  if (cfg === 2) return 2;
  const store = await openStore(cfg, io, action === "list");
  if (typeof store === "number") return store;
  if (store === null) {
    // No store yet: nothing was ever registered or granted.
    if (action === "list") {
      io.out(kind === "clients" ? "no clients" : "no grants");
      return 0;
    }
    io.err(
      `error: no ${kind === "clients" ? "client" : "grant"} ${id ?? ""} ` +
        `(the store ${cfg.loaded.config.dataDir}/store.kv does not exist yet)`,
    );
    return 1;
  }
  try {
    const wait = options.waitMs ?? 2000;
    if (kind === "clients") {
      return action === "list"
        ? await listClients(store, io)
        : await revokeClient(store, id!, io, wait);
    }
    if (action === "list") return await listGrants(store, io, parsed.user);
    return parsed.all
      ? await revokeAllGrants(store, io, parsed.user, wait)
      : await revokeGrant(store, id!, io, wait);
  } finally {
    store.close();
  }
}

/**
 * Options anywhere, values of `--config` and `--user` in the next word or after `=`, `--` ends
 * the options. A word is an unknown option only if it looks like one (`-x`, `--word`): ids are
 * random and may start with `-`.
 */
function parseOwnerArgs(args: string[], grants: boolean): OwnerArgs | string {
  const out: OwnerArgs = { positionals: [], all: false, printFlags: false, help: false };
  const valued = new Map<string, "config" | "user">([["-c", "config"], ["--config", "config"]]);
  if (grants) valued.set("--user", "user");
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      out.positionals.push(...args.slice(i + 1));
      break;
    }
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const key = valued.get(name);
    if (key) {
      const value = name === arg ? args[++i] : arg.slice(eq + 1);
      if (value === undefined || value === "" || (name === arg && value.startsWith("--"))) {
        return `option '${name}' needs a value`;
      }
      out[key] = value;
    } else if (arg === "--all" && grants) out.all = true;
    else if (arg === "--print-flags") out.printFlags = true;
    else if (arg === "-h" || arg === "--help") out.help = true;
    else if (/^-[A-Za-z]$/.test(arg) || /^--[a-z][a-z-]{0,19}(=.*)?$/.test(arg)) {
      return `Unknown option '${name}'`;
    } else out.positionals.push(arg);
  }
  return out;
}

/** What is wrong with the words given, if anything. */
function checkShape(
  kind: "clients" | "grants",
  action: string | undefined,
  id: string | undefined,
  extra: string[],
  args: OwnerArgs,
): string | undefined {
  if (action !== "list" && action !== "revoke") {
    return action === undefined
      ? `"${kind}" needs "list" or "revoke"`
      : `unknown ${kind} command "${action}"`;
  }
  if (extra.length > 0) return `unexpected "${extra.join(" ")}"`;
  if (action === "list") {
    if (id !== undefined) return `"${kind} list" takes no id`;
    if (args.all) return `--all goes with "grants revoke"`;
    return undefined;
  }
  if (args.all && id !== undefined) return "give either an id or --all, not both";
  if (!args.all && id === undefined) {
    return kind === "grants"
      ? `"grants revoke" needs a grant id (see "grants list") or --all`
      : `"clients revoke" needs a client id (see "clients list")`;
  }
  if (args.user !== undefined && !args.all) return `--user goes with "grants list" or "--all"`;
  return undefined;
}

/** Opens the store of a login config; null when it does not exist (nothing to list). */
async function openStore(
  cfg: CliConfig,
  io: Io,
  readOnly: boolean,
): Promise<Store | null | number> {
  const { config } = cfg.loaded;
  if (config.demo || !config.auth) {
    io.err(
      `error: ${
        config.demo ? `no config file at ${cfg.path}` : `${cfg.absolute} has no "github" section`
      }: clients and grants exist only with login configured. ` +
        `Pass the proxy's config with --config FILE (or $MCP_PROXY_CONFIG).`,
    );
    return 2;
  }
  const file = `${config.dataDir}/store.kv`;
  try {
    await Deno.stat(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    if (notCapable(error)) {
      io.err(`error: no permission to read ${file}: ${flagsHint(config.dataDir)}`);
      return 2;
    }
    throw error;
  }
  if (typeof Deno.openKv !== "function") {
    io.err(`error: the store needs Deno's --unstable-kv flag: ${flagsHint(config.dataDir)}`);
    return 2;
  }
  try {
    return await Store.open(config.dataDir);
  } catch (error) {
    if (notCapable(error)) {
      io.err(
        `error: no permission to ${readOnly ? "open" : "change"} the store ${file}: ` +
          flagsHint(config.dataDir),
      );
      return 2;
    }
    throw error;
  }
}

function flagsHint(dataDir: string): string {
  return `run with --unstable-kv --allow-read=${dataDir} --allow-write=${dataDir} (or use ` +
    `"deno task clients" / "deno task grants", which derive the flags)`;
}

function live(grant: GrantRecord, now: number): boolean {
  return !grant.revokedAt && grant.expiresAt > now;
}

async function listClients(store: Store, io: Io): Promise<number> {
  const now = Date.now();
  const clients = await store.listClients();
  const grants = await store.listGrants();
  const byClient = Map.groupBy(grants, (g) => g.clientId);
  const known = new Set(clients.map((c) => c.clientId));
  // Clients identified by a metadata document URL have no registration, only grants (a
  // deleted client's revoked grants stay until they expire, and are not a client).
  const documented = [...byClient.keys()].filter((id) => !known.has(id) && isCimdClientId(id));
  const rows: { createdAt: number; cells: string[] }[] = [];
  const count = (id: string) => {
    const of = byClient.get(id) ?? [];
    const active = of.filter((g) => live(g, now)).length;
    const revoked = of.filter((g) => g.revokedAt).length;
    return revoked ? `${active} live, ${revoked} revoked` : `${active} live`;
  };
  for (const c of clients) {
    rows.push({
      createdAt: c.createdAt,
      cells: [
        printable(c.clientId, 200),
        printable(c.clientName ?? "(unnamed)", 40),
        c.authMethod,
        redirectHosts(c.redirectUris),
        timestamp(c.createdAt),
        count(c.clientId),
      ],
    });
  }
  for (const id of documented) {
    const of = byClient.get(id)!;
    const first = Math.min(...of.map((g) => g.createdAt));
    rows.push({
      createdAt: first,
      cells: [
        printable(id, 200),
        "(metadata document)",
        "none",
        redirectHosts(of.map((g) => g.redirectUri)),
        timestamp(first),
        count(id),
      ],
    });
  }
  if (rows.length === 0) {
    io.out("no clients");
    return 0;
  }
  rows.sort((a, b) => a.createdAt - b.createdAt);
  const headers = ["CLIENT ID", "NAME", "AUTH", "REDIRECT HOSTS", "CREATED", "GRANTS"];
  for (const line of table(headers, rows.map((r) => r.cells))) io.out(line);
  return 0;
}

function redirectHosts(uris: string[]): string {
  const hosts = new Set<string>();
  for (const uri of uris) {
    try {
      const url = new URL(uri);
      hosts.add(url.host || `${url.protocol}`);
    } catch {
      hosts.add("?");
    }
  }
  return printable([...hosts].join(",") || "-", 60);
}

/** `--user` matches a login (any case) or a numeric id. */
function matchesUser(grant: GrantRecord, user: string | undefined): boolean {
  if (user === undefined) return true;
  return /^\d+$/.test(user)
    ? grant.userId === Number(user)
    : grant.login.toLowerCase() === user.toLowerCase();
}

async function listGrants(store: Store, io: Io, user: string | undefined): Promise<number> {
  const now = Date.now();
  const grants = (await store.listGrants()).filter((g) => matchesUser(g, user))
    .sort((a, b) => a.createdAt - b.createdAt);
  if (grants.length === 0) {
    io.out(user === undefined ? "no grants" : `no grants for ${printable(user)}`);
    return 0;
  }
  const names = await clientNames(store, grants);
  const rows = grants.map((g) => [
    g.id,
    `${printable(g.login, 39)} (${g.userId})`,
    clientLabel(g.clientId, names.get(g.clientId)),
    printable(g.resource, 100),
    timestamp(g.createdAt),
    g.expiresAt <= now ? `${timestamp(g.expiresAt)} (expired)` : timestamp(g.expiresAt),
    g.revokedAt
      ? `${timestamp(g.revokedAt)} (${printable(g.revokedReason ?? "revoked", 40)})`
      : "-",
  ]);
  const headers = ["GRANT ID", "USER", "CLIENT", "RESOURCE", "CREATED", "EXPIRES", "REVOKED"];
  for (const line of table(headers, rows)) io.out(line);
  return 0;
}

async function clientNames(
  store: Store,
  grants: GrantRecord[],
): Promise<Map<string, ClientRecord | null>> {
  const out = new Map<string, ClientRecord | null>();
  for (const id of new Set(grants.map((g) => g.clientId))) out.set(id, await store.getClient(id));
  return out;
}

function clientLabel(id: string, record: ClientRecord | null | undefined): string {
  const name = record?.clientName;
  return name ? `${printable(id, 200)} (${printable(name, 40)})` : printable(id, 200);
}

function describeGrant(g: GrantRecord, client: ClientRecord | null): string {
  return `grant ${g.id} of ${printable(g.login, 39)} (${g.userId}) for client ${
    clientLabel(g.clientId, client)
  }`;
}

async function revokeGrant(store: Store, id: string, io: Io, waitMs: number): Promise<number> {
  const grant = await store.getGrant(id);
  if (!grant) {
    io.err(`error: no grant ${printable(id, 100)} (see "deno task grants list")`);
    return 1;
  }
  const client = await store.getClient(grant.clientId);
  if (grant.revokedAt) {
    io.out(
      `${describeGrant(grant, client)} was already revoked at ${timestamp(grant.revokedAt)} (${
        printable(grant.revokedReason ?? "revoked", 60)
      }); nothing to do`,
    );
    return 0;
  }
  await store.revokeGrant(id, REASON, Date.now());
  const confirmed = await confirm(store, waitMs);
  io.out(`${describeGrant(grant, client)}: ${confirmed ? CONFIRMED : UNCONFIRMED}`);
  return 0;
}

async function revokeAllGrants(
  store: Store,
  io: Io,
  user: string | undefined,
  waitMs: number,
): Promise<number> {
  const now = Date.now();
  const grants = (await store.listGrants()).filter((g) => live(g, now) && matchesUser(g, user));
  const whose = user === undefined ? "" : ` of ${printable(user)}`;
  if (grants.length === 0) {
    io.out(`no live grants${whose}; nothing to do`);
    return 0;
  }
  const names = await clientNames(store, grants);
  for (const grant of grants) {
    await store.revokeGrant(grant.id, REASON, now);
    io.out(`  ${describeGrant(grant, names.get(grant.clientId) ?? null)}`);
  }
  const confirmed = await confirm(store, waitMs);
  const n = grants.length;
  io.out(`${n} grant${n === 1 ? "" : "s"}${whose} ${confirmed ? CONFIRMED : UNCONFIRMED}`);
  return 0;
}

async function revokeClient(store: Store, id: string, io: Io, waitMs: number): Promise<number> {
  const client = await store.getClient(id);
  const grants = await store.grantsOfClient(id);
  if (!client && grants.length === 0) {
    io.err(`error: no client ${printable(id, 200)} (see "deno task clients list")`);
    return 1;
  }
  const active = grants.filter((g) => live(g, Date.now())).length;
  await store.deleteClient(id);
  const confirmed = await confirm(store, waitMs);
  const name = client?.clientName ? ` (${printable(client.clientName, 40)})` : "";
  io.out(
    `client ${printable(id, 200)}${name} deleted and ${active} live grant${
      active === 1 ? "" : "s"
    } ${confirmed ? CONFIRMED : UNCONFIRMED}`,
  );
  if (!client) {
    io.out(
      "note: this client is identified by its metadata document URL; it can ask to sign in " +
        "again, and the consent page and the allow-list decide.",
    );
  }
  return 0;
}

/**
 * Tells the running proxy that the store changed (the control epoch) and waits up to `waitMs`
 * for it to acknowledge; false when no proxy did.
 */
async function confirm(store: Store, waitMs: number): Promise<boolean> {
  const epoch = await store.bumpEpoch();
  const deadline = Date.now() + waitMs;
  for (;;) {
    const ack = await store.acknowledged();
    if (ack && ack.epoch >= epoch) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
