/**
 * What the multiplexer needs of a sessionless downstream (a call or a listen stream): the server
 * as routed and the identity the child is chosen by. There is no session behind it.
 */
import type { Identity, RoutedSession } from "../../router/router.ts";
import type { ServerConfig } from "../../config/schema.ts";

let next = 1;

export abstract class SessionlessDownstream implements RoutedSession {
  readonly id: string;
  /** No log message reaches it unless a request opts in (`io.modelcontextprotocol/logLevel`). */
  logLevel = Number.POSITIVE_INFINITY;
  abstract readonly capabilities: { sampling: boolean; elicitation: boolean; roots: boolean };

  constructor(kind: string, readonly server: ServerConfig, readonly identity: Identity) {
    this.id = `${kind}-${next++}`;
  }

  get identityKey(): string {
    return this.identity.key;
  }

  abstract notify(text: string): void;
}
