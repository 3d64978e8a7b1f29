/** Opens the store a config names: PostgreSQL with `store.url`, else Deno KV in `dataDir`. */
import type { PostgresSettings } from "../config/store-schema.ts";
import { KvStore } from "./kv.ts";
import type { Store } from "./store.ts";

/**
 * Opens (and for PostgreSQL, migrates) the configured store; throws StoreUnavailable. The
 * PostgreSQL client is loaded only when a config names a database, so a KV proxy does not
 * carry it in memory.
 */
export async function openStore(
  config: { dataDir: string; store: PostgresSettings | null },
): Promise<Store> {
  if (!config.store) return await KvStore.open(config.dataDir);
  const { PgStore } = await import("./postgres.ts");
  return await PgStore.open(config.store);
}
