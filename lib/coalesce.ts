/**
 * Serialises a task that must not overlap with itself, such as a config reload on SIGHUP
 * (signal(7): signals of one kind arriving close together may be merged by the kernel too).
 */

/**
 * Wraps `task` so that at most one run is active. A call while a run is active schedules one
 * more run after it; further calls before that run starts join it. So the last call always
 * has a run that started after it, and runs finish in the order they started: the last wins.
 * The returned promise settles with the run that serves the call.
 */
export function coalesce(task: () => Promise<void>): () => Promise<void> {
  let running = false;
  let queued: PromiseWithResolvers<void> | null = null;
  const launch = async (): Promise<void> => {
    running = true;
    try {
      await task();
    } finally {
      running = false;
      const next = queued;
      queued = null;
      if (next) launch().then(next.resolve, next.reject);
    }
  };
  return () => {
    if (!running) return launch();
    queued ??= Promise.withResolvers<void>();
    return queued.promise;
  };
}
