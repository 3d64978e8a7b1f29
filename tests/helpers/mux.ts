/** Options of a multiplexer over a fake child, for the router's unit tests. */
import type { MuxOptions } from "../../lib/router/mux.ts";
import type { SpawnChild } from "../../lib/children/child.ts";
import { createLogger } from "../../lib/log.ts";

/** A quiet multiplexer of server "s" whose children come from `spawn`; `extra` overrides. */
export function fakeMuxOptions(spawn: SpawnChild, extra: Partial<MuxOptions> = {}): MuxOptions {
  return {
    spec: { server: "s", command: "fake", args: [], env: {}, maxLineBytes: 1 << 20 },
    protocolVersion: "2025-06-18",
    clientInfo: { name: "test", version: "1" },
    initTimeoutMs: 30_000,
    restartDelayMs: 1,
    log: createLogger({ write: () => {} }),
    requestTimeoutMs: 60_000,
    maxInFlight: 16,
    shared: false,
    spawn,
    ...extra,
  };
}
