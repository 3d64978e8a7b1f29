/**
 * Modules loaded on their first use instead of at start. Every module the proxy loads stays in
 * memory for the life of the process (its source, twice over with the inline source map Deno
 * emits), so a part that many configs never use (the 2026-07-28 lane, the merged endpoint,
 * several instances) is imported when it is first needed:
 * https://tc39.es/ecma262/#sec-import-calls
 */

/** A module of the proxy could not be loaded when it was first needed. */
export class LazyImportError extends Error {
  constructor(what: string, cause: unknown) {
    super(`cannot load ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = "LazyImportError";
  }
}

/**
 * Wraps a dynamic `import()` so it runs once: calls while it loads share the one load, later
 * calls get the loaded module at once. A failed load rejects with a `LazyImportError` naming
 * `what`, and the next call tries again (a failure may pass, e.g. out of file descriptors).
 *
 * @example
 * ```ts
 * const part = new URL("./part.ts", import.meta.url).href;
 * const load = lazyImport("the part", () => import(part));
 * const { serve } = await load(); // later calls: the same module, loaded once
 * ```
 */
export function lazyImport<T>(what: string, load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () =>
    loading ??= load().catch((error) => {
      loading = undefined;
      throw new LazyImportError(what, error);
    });
}
