/**
 * The child limits (`limits.childrenPerUser`, `limits.childrenTotal`): which running children to
 * stop so that one more can start. Only an idle child is ever stopped for room.
 */
import type { BackendState } from "../children/supervisor.ts";

/** A child slot as the limits see it (a `Mux` is one). */
export interface LimitedChild {
  /** Whose child it is ("shared" for nobody's). */
  readonly owner: string;
  readonly supervisor: { readonly state: BackendState; readonly lastActivity: number };
  readonly inFlight: number;
  readonly queued: number;
}

export type ChildLimit = "childrenPerUser" | "childrenTotal";

/** What starting one more child takes: the children to stop, or the limit that refuses it. */
export interface Room<T> {
  stop: { child: T; limit: ChildLimit }[];
  refused?: ChildLimit;
}

/**
 * Makes room for a child of `owner` about to start among the `live` ones (starting, ready or
 * restarting; the newcomer left out): first under `childrenPerUser` among the owner's own, then
 * under `childrenTotal` among the rest, stopping the least recently used idle children. Only a
 * ready child with nothing in flight, queued or waiting is idle: a starting child has no
 * requests yet but is about to serve the session that started it. `refused` names the limit
 * when too few are idle.
 */
export function makeRoom<T extends LimitedChild>(
  owner: string,
  live: readonly T[],
  limits: { childrenPerUser: number; childrenTotal: number },
): Room<T> {
  const room: Room<T> = { stop: [] };
  const mine = owner === "shared" ? [] : live.filter((child) => child.owner === owner);
  if (mine.length >= limits.childrenPerUser) {
    const count = mine.length - limits.childrenPerUser + 1;
    if (!evict(room, mine, count, "childrenPerUser")) return room;
  }
  const stopping = new Set(room.stop.map((s) => s.child));
  const stillLive = live.filter((child) => !stopping.has(child));
  if (stillLive.length >= limits.childrenTotal) {
    evict(room, stillLive, stillLive.length - limits.childrenTotal + 1, "childrenTotal");
  }
  return room;
}

function evict<T extends LimitedChild>(
  room: Room<T>,
  candidates: readonly T[],
  count: number,
  limit: ChildLimit,
): boolean {
  const idle = candidates
    .filter((c) => c.supervisor.state === "ready" && c.inFlight === 0 && c.queued === 0)
    .sort((a, b) => a.supervisor.lastActivity - b.supervisor.lastActivity);
  if (idle.length < count) {
    room.refused = limit;
    return false;
  }
  for (const child of idle.slice(0, count)) room.stop.push({ child, limit });
  return true;
}
