/**
 * The rules of a child's life the supervisor applies: the proxy's own `initialize` and what its
 * answer must hold, how an exit is described, how long until a restart, and why a start may be
 * slow. No state; the supervisor holds it.
 */
import type { ExitInfo } from "./child.ts";
import { isRecord } from "../jsonrpc.ts";

/** The parts of a child's InitializeResult the proxy keeps and replays to every client. */
export interface InitializeResult {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  serverInfo: { name: string; version: string; [key: string]: unknown };
  instructions?: string;
  [key: string]: unknown;
}

/** The backend cannot serve now; `retryAfterMs` says when it will try again. */
export class UnavailableError extends Error {
  constructor(message: string, readonly retryAfterMs: number) {
    super(message);
    this.name = "UnavailableError";
  }
}

/** The child exited or failed before it finished `initialize`. */
export class StartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartError";
  }
}

/** The client capabilities the proxy declares to its children: it relays all three. */
const CAPABILITIES_OFFERED = { sampling: {}, elicitation: {}, roots: { listChanged: true } };

/**
 * The proxy's `initialize` request to a child (MCP lifecycle, initialization:
 * https://modelcontextprotocol.io/specification/2025-06-18/basic/lifecycle#initialization),
 * serialised for its stdin.
 */
export function initializeRequest(
  id: string,
  protocolVersion: string,
  clientInfo: { name: string; version: string },
): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: { protocolVersion, capabilities: CAPABILITIES_OFFERED, clientInfo },
  });
}

/**
 * The delay before restarting after the `exits`-th exit in the crash window: exponential backoff
 * (`base`, doubling per exit) with up to 25 % random jitter, never over `max`, so children that
 * crashed together do not restart in lockstep
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
 */
export function restartDelay(
  exits: number,
  base: number,
  max: number,
  random: () => number,
): number {
  const exp = Math.min(max, base * 2 ** Math.max(0, exits - 1));
  return Math.round(Math.min(max, exp * (1 + random() * 0.25)));
}

/**
 * Checks a child's answer to the proxy's `initialize` (MCP lifecycle, initialization:
 * https://modelcontextprotocol.io/specification/2025-06-18/basic/lifecycle#initialization):
 * the InitializeResult, or a StartError saying why the child cannot be used.
 */
export function parseInitializeResult(
  message: Record<string, unknown>,
  server: string,
): InitializeResult | Error {
  if (isRecord(message.error)) {
    return new StartError(
      `server "${server}" refused initialize: ${String(message.error.message ?? "unknown error")}`,
    );
  }
  const result = message.result;
  if (
    !isRecord(result) || typeof result.protocolVersion !== "string" ||
    !isRecord(result.capabilities) ||
    !isRecord(result.serverInfo)
  ) {
    return new StartError(`server "${server}" sent a malformed initialize result`);
  }
  return result as InitializeResult;
}

/** Why a child may be slow to answer `initialize`, for the "still starting" log line. */
export function slowStartHint(command: string): string {
  const name = command.split(/[\\/]/).pop()!.replace(/\.(cmd|exe)$/i, "");
  switch (name) {
    case "npx":
    case "pnpx":
    case "bunx":
    case "uvx":
      return `${name} may be downloading the package on first use`;
    case "docker":
    case "podman":
      return `${name} may be pulling the image`;
    default:
      return "no answer to initialize yet";
  }
}

/** "server "x" exited (code 3): <last stderr line>" */
export function describeExit(server: string, info: ExitInfo, when: string): string {
  const how = info.signal ? `signal ${info.signal}` : `code ${info.code}`;
  const why = info.reason ?? info.lastStderr;
  return `server "${server}" exited${when ? ` ${when}` : ""} (${how})${why ? `: ${why}` : ""}`;
}
