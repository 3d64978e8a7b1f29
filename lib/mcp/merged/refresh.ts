/**
 * When a URI no list has makes the merged endpoint read its servers' resource lists again: at
 * most once for each state of those lists. The state changes when a child announces a list
 * change, when a child exits, and when the set of servers asked changes (a child back, a server
 * started, barred or usable again); a miss while a read is under way shares it. So a resource a
 * child lists after its `list_changed` is found on the next request, while one request naming
 * many unknown URIs (a listen's `resourceSubscriptions`, a burst of subscribes) costs the
 * children one read of each list, not one per URI.
 * https://modelcontextprotocol.io/specification/2025-11-25/server/resources#list-changed-notification
 */
export class Refresh {
  #generation = 0;
  /** The generation the last finished read began in. */
  #done = -1;
  #state: string | undefined;
  #running: { generation: number; promise: Promise<void> } | undefined;

  /** @param read reads the lists */
  constructor(private readonly read: () => Promise<unknown>) {}

  /** The lists may have changed: the next miss reads them again. */
  stale(): void {
    this.#generation++;
  }

  /**
   * Reads the lists unless they were read since they last changed. `state` names what they are
   * read from (the servers asked); a different one is a change.
   */
  run(state: string): Promise<void> {
    if (state !== this.#state) {
      this.#state = state;
      this.#generation++;
    }
    const generation = this.#generation;
    if (this.#done >= generation) return Promise.resolve();
    if (this.#running?.generation === generation) return this.#running.promise;
    const promise: Promise<void> = this.read().then(() => {
      this.#done = Math.max(this.#done, generation);
    }).finally(() => {
      if (this.#running?.promise === promise) this.#running = undefined;
    });
    this.#running = { generation, promise };
    return promise;
  }
}
