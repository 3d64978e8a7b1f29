/** Opening the Deno KV file of the store, each step's failure named (StoreUnavailable). */
import { StoreUnavailable } from "./store.ts";

/** Runs one step of opening the store; an OS error becomes StoreUnavailable. */
async function step<T>(path: string, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new StoreUnavailable(path, `${what}: ${(error as Error).message}`);
  }
}

/**
 * Opens (or creates) `<dataDir>/store.kv` and writes to it once, so that a data directory that
 * cannot be created or written is reported now, naming the path and the cause. Missing Deno
 * permissions pass through.
 */
export async function openKvFile(dataDir: string): Promise<{ kv: Deno.Kv; path: string }> {
  const path = `${dataDir}/store.kv`;
  await step(
    path,
    `cannot create the data directory ${dataDir}`,
    () => Deno.mkdir(dataDir, { recursive: true, mode: 0o700 }),
  );
  // SQLite reports a read-only directory only as "unable to open database file": a plain
  // file write names the cause ("Read-only file system", "Permission denied").
  const probe = `${dataDir}/.write-test-${crypto.randomUUID()}`;
  await step(path, `the data directory ${dataDir} is not writable`, async () => {
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  });
  const kv = await step(path, "cannot open it", () => Deno.openKv(path));
  await step(path, "cannot write to it", () => kv.set(["meta", "opened"], Date.now()))
    .catch((error) => {
      kv.close();
      throw error;
    });
  return { kv, path };
}
