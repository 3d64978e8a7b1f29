/**
 * The derivation of the Deno flags `serve` needs from its `--config` and `--listen`, shared by
 * `main.ts permissions` and the task launcher (`launch.ts`), so the launcher runs the proxy with
 * exactly what `permissions` prints. Both read the options with `SERVE_SYNTAX` (options.ts).
 */
import { configPathFrom, loadConfig, type LoadedConfig } from "../config/load.ts";
import { absolutePath } from "../config/paths.ts";
import { derivePermissions } from "../permissions/derive.ts";

/** Where `deriveServeFlags` finds the config, as `serve` would. */
export interface ServeFlagsOptions {
  /** `--config`, if given. */
  config?: string;
  /** `--listen`, if given. */
  listen?: string;
  env: (name: string) => string | undefined;
  cwd: string;
  /**
   * Where the file will be on the machine that runs the proxy, when that differs from where it
   * is read now (a build for another machine): its paths resolve from there.
   */
  installedAt?: string;
}

/** The flags `serve` needs, with the config they were derived from and its path as given. */
export interface ServeFlags {
  flags: string[];
  loaded: LoadedConfig;
  path: string;
}

/**
 * Loads the config as `serve` would and derives its Deno permission flags. Only the names of
 * the variables the config references matter here, so an unset one gets a placeholder value:
 * the secret need not be set to derive flags, and `serve` reports a missing one itself.
 * Throws `ConfigError` when the config cannot be loaded.
 */
export async function deriveServeFlags(options: ServeFlagsOptions): Promise<ServeFlags> {
  const where = configPathFrom(options.config, options.env);
  const loaded = await loadConfig(where.path, {
    explicit: where.explicit,
    env: (name) => options.env(name) ?? `unset-${name}`,
    cwd: options.cwd,
    listen: options.listen,
    installedAt: options.installedAt,
  });
  const source = loaded.config.source ?? absolutePath(options.cwd, where.path);
  return { flags: derivePermissions(loaded, source), loaded, path: where.path };
}
