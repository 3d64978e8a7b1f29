/**
 * The owner's controls, working on the store while the proxy runs: `main.ts clients list|revoke`
 * (owner-clients.ts) and `main.ts grants list|revoke` (owner-grants.ts). A change bumps the
 * store's control epoch; the running proxy notices within a fraction of a second, drops its
 * cached checks and acknowledges, and the command waits (at most 2 s) for that acknowledgement
 * before it says the change is in force (owner-store.ts).
 */
import { FlagError } from "../args.ts";
import { configFile, type Io, loadCliConfig } from "./common.ts";
import { commandFlags, fallbackFlags } from "./flags.ts";
import { listClients, revokeClient } from "./owner-clients.ts";
import { listGrants, revokeAllGrants, revokeGrant } from "./owner-grants.ts";
import { openStore } from "./owner-store.ts";
import { CLIENTS_SYNTAX, GRANTS_SYNTAX, parseCommandLine } from "./options.ts";

export { CONFIRMED, UNCONFIRMED } from "./owner-store.ts";

const DENO_FLAGS = `Deno flags ("deno task clients" and "deno task grants" pass exactly these;
--print-flags prints them): --unstable-kv, --allow-read of the config and the data directory,
--allow-write of the data directory, --allow-env of MCP_PROXY_CONFIG and the variables the
config references.`;

const CLIENTS_USAGE = `Usage:
  main.ts clients list [--config FILE]        the registered clients, with their grants
  main.ts clients revoke ID [--config FILE]   delete a client: its grants (and tokens) are
                                              revoked and its approvals forgotten
  main.ts clients --print-flags               the Deno flags these commands need

Works on the store of a login config while the proxy runs; a revocation applies to the next
request. Exit codes: 0 done, 1 unknown id, 2 bad flags or config.
${DENO_FLAGS}`;

const GRANTS_USAGE = `Usage:
  main.ts grants list [--user LOGIN_OR_ID] [--config FILE]
  main.ts grants revoke ID [--config FILE]
  main.ts grants revoke --all [--user LOGIN_OR_ID] [--config FILE]
  main.ts grants --print-flags

A grant is one sign-in of one GitHub user for one client; revoking it ends its access and
refresh tokens. Works on the store of a login config while the proxy runs; a revocation applies
to the next request. An id that starts with "-" may follow "--".
Exit codes: 0 done, 1 unknown id, 2 bad flags or config.
${DENO_FLAGS}`;

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
    await store.close();
  }
}

/**
 * Reads the words with the command's syntax (options.ts: ids may start with `-`). A value of
 * `--config` or `--user` that is missing or empty is "needs a value".
 */
function parseOwnerArgs(args: string[], grants: boolean): OwnerArgs | string {
  // Clients take a subset of the grants' options: their `user` and `all` stay unset.
  const syntax = grants ? GRANTS_SYNTAX : CLIENTS_SYNTAX as typeof GRANTS_SYNTAX;
  let parsed;
  try {
    parsed = parseCommandLine(args, syntax);
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    return error.mistake === "missing" ? `option '${error.word}' needs a value` : error.message;
  }
  const { values, positionals } = parsed;
  const empty = (["config", "user"] as const).find((name) => values[name] === "");
  if (empty) return `option '--${empty}' needs a value`;
  return {
    positionals,
    config: values.config,
    user: values.user,
    all: values.all ?? false,
    printFlags: values["print-flags"] ?? false,
    help: values.help ?? false,
  };
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
