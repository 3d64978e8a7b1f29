/**
 * Recording stand-ins for the downstream side of the multiplexer in unit tests: a session that
 * keeps what reaches its standalone stream, and a reply that keeps what reaches one request's
 * stream. Messages are kept parsed.
 */
import type { Downstream, Reply } from "../../lib/router/downstream.ts";

export type Json = Record<string, unknown>;

export interface TestSession extends Downstream {
  /** What reached the standalone stream (`notify`). */
  readonly notes: Json[];
}

export function testSession(
  id: string,
  identityKey = "github:1",
  capabilities: Partial<Downstream["capabilities"]> = { sampling: true, elicitation: true },
): TestSession {
  const notes: Json[] = [];
  return {
    id,
    identityKey,
    capabilities: { sampling: false, elicitation: false, roots: false, ...capabilities },
    logLevel: -1,
    notify: (text) => notes.push(JSON.parse(text)),
    notes,
  };
}

export interface TestReply extends Reply {
  /** Messages sent before the final one. */
  readonly sent: Json[];
  /** The final response, once it came. */
  final(): Json | undefined;
}

export function testReply(streaming = true): TestReply {
  const sent: Json[] = [];
  let final: Json | undefined;
  return {
    streaming,
    send: (text) => sent.push(JSON.parse(text)),
    end: (text) => {
      if (final) throw new Error(`a second final response: ${text}`);
      final = JSON.parse(text);
    },
    sent,
    final: () => final,
  };
}
