/**
 * The parts of the proxy's start that can fail with a message for the owner: its logs (the log,
 * the audit log, the access log, with the start-up notices and warnings) and its store.
 */
import { DEFAULT_CONFIG_PATH, type LoadedConfig } from "./config/load.ts";
import { absolutePath } from "./config/paths.ts";
import { formatHostPort } from "./config/hosts.ts";
import { tunnelAdvice } from "./config/advice.ts";
import { checkOwnPermissions } from "./permissions/self-check.ts";
import { createLogger, logFile, type Logger, silentLogger } from "./log.ts";
import { type Store, StoreUnavailable } from "./store/store.ts";
import { openStore as openConfiguredStore } from "./store/open.ts";

/**
 * The proxy's logs (the log, the audit log, the access log) and the start-up notices and warnings.
 * Throws MissingPermission before anything is opened.
 */
export async function startLogs(loaded: LoadedConfig, write?: (line: string) => void) {
  const { config } = loaded;
  const format = config.log.logFormat;
  const log = createLogger({ level: config.logLevel, format, write });
  for (const notice of loaded.notices) log.info(`config notice: ${notice}`);
  if (!config.auth && !config.demo) {
    // Only --no-auth gets here: main refuses a config without login otherwise.
    log.warn(
      "login is off (--no-auth): anyone who can reach the listen address can use your MCP " +
        "servers; never point a tunnel at this proxy without login",
      { listen: formatHostPort(config.listen) },
    );
  }
  const configPath = config.source ?? absolutePath(Deno.cwd(), DEFAULT_CONFIG_PATH);
  for (const warning of checkOwnPermissions(loaded, configPath)) log.warn(warning);
  for (const warning of tunnelAdvice(config)) log.warn(warning);
  // The audit log is written whatever logLevel says; the access log follows it (info).
  const audit = createLogger({ level: "debug", format, write });
  return { log, audit, access: await accessLogger(config, write) };
}

/** The proxy cannot start for a reason the message explains (a store or log it cannot write). */
export class StartupError extends Error {
  override name = "StartupError";
}

/** The configured store (Deno KV in `dataDir`, or PostgreSQL); StartupError with a hint if not. */
export async function openStore(config: LoadedConfig["config"]): Promise<Store> {
  try {
    return await openConfiguredStore(config);
  } catch (error) {
    if (!(error instanceof StoreUnavailable)) throw error;
    const hint = config.store
      ? `The proxy keeps sign-ins and downloaded lists in that database: check "store.url", ` +
        `that the server runs and that the user may create tables in the database.`
      : `The proxy keeps sign-ins and downloaded lists there: make "dataDir" ` +
        `(${config.dataDir}) writable by the user running it, or set "dataDir" to a directory that is.`;
    throw new StartupError(`${error.message}
  ${hint}`);
  }
}

/** The access log's writer: stderr with the rest, a file of its own, or nothing. */
async function accessLogger(
  config: LoadedConfig["config"],
  stderr?: (line: string) => void,
): Promise<Logger> {
  const { accessLog, logFormat: format } = config.log;
  if (accessLog.to === "off") return silentLogger;
  if (accessLog.to === "stderr") {
    return createLogger({ level: config.logLevel, format, write: stderr });
  }
  try {
    return createLogger({ level: config.logLevel, format, write: await logFile(accessLog.path) });
  } catch (error) {
    throw new StartupError(
      `cannot open the access log ${accessLog.path}: ${(error as Error).message}\n  Set ` +
        `"accessLog" to a file the user running the proxy may write, "stderr" or "off".`,
    );
  }
}
