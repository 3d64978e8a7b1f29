/**
 * The store as the owner commands use it: opened only for a login config, and the handshake with
 * the running proxy after a change (the control epoch and its acknowledgement).
 */
import { KvStore } from "../store/kv.ts";
import { openStore as openConfigured } from "../store/open.ts";
import { type GrantRecord, type Store, StoreUnavailable } from "../store/store.ts";
import { type CliConfig, type Io, notCapable } from "./common.ts";

/** What a revocation says when the running proxy acknowledged it. */
export const CONFIRMED = "revoked; the running proxy confirmed";
/** What a revocation says when no running proxy acknowledged it in time. */
export const UNCONFIRMED =
  "revoked in the store; no running proxy confirmed it (it applies when the proxy next starts)";
/** The reason recorded on a grant the owner revokes. */
export const REASON = "revoked by the owner";

/** Opens the store of a login config; null when it does not exist (nothing to list). */
export async function openStore(
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
  if (config.store) {
    try {
      return await openConfigured(config);
    } catch (error) {
      if (!(error instanceof StoreUnavailable) && !notCapable(error)) throw error;
      io.err(`error: ${error instanceof StoreUnavailable ? error.message : String(error)}`);
      return 2;
    }
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
    return await KvStore.open(config.dataDir);
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

/** Whether a grant still works: not revoked and not expired at `now`. */
export function live(grant: GrantRecord, now: number): boolean {
  return !grant.revokedAt && grant.expiresAt > now;
}

/**
 * Tells the running proxy that the store changed (the control epoch) and waits up to `waitMs`
 * for it to acknowledge; false when no proxy did.
 */
export async function confirm(store: Store, waitMs: number): Promise<boolean> {
  const epoch = await store.bumpEpoch();
  const deadline = Date.now() + waitMs;
  for (;;) {
    const ack = await store.acknowledged();
    if (ack && ack.epoch >= epoch) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
