/**
 * How many more files this process may open. Deno has no getrlimit, so the answer is measured:
 * `/dev/null` is opened until the open fails with "too many open files" or `enough` is reached,
 * and every descriptor is closed again. The count covers the soft RLIMIT_NOFILE minus what is
 * already open (getrlimit(2), https://man7.org/linux/man-pages/man2/getrlimit.2.html).
 */

/** The probed device; `derivePermissions` grants read access to exactly this path. */
export const PROBE_PATH = "/dev/null";

/** Counts free file descriptors up to `enough`; null when they cannot be counted. */
export type CountFreeFiles = (enough: number) => number | null;

/**
 * Free file descriptors, counted up to `enough` (the answer is then "at least `enough`");
 * null when they cannot be counted (no `/dev/null`, or no read permission for it).
 */
export function freeFileDescriptors(enough: number): number | null {
  const opened: Deno.FsFile[] = [];
  try {
    while (opened.length < enough) opened.push(Deno.openSync(PROBE_PATH, { read: true }));
    return opened.length;
  } catch (error) {
    const code = (error as { code?: string }).code;
    return code === "EMFILE" || code === "ENFILE" ? opened.length : null;
  } finally {
    for (const file of opened) file.close();
  }
}

/** Descriptors kept free for everything but the public listener's connections. */
export function reservedDescriptors(childrenTotal: number, otherConnections: number): number {
  // Each child holds three pipes; the store, outbound fetches and the listeners need a few more.
  return 32 + otherConnections + 4 * childrenTotal;
}

export interface ConnectionBudget {
  /** The connection cap to enforce. */
  max: number;
  /** Free descriptors counted at start (null: unknown); `atLeast` when the count stopped early. */
  free: number | null;
  atLeast: boolean;
}

/**
 * The connection cap: the configured one, lowered so that connections plus `reserve` fit in the
 * free descriptors (at least 1; with almost none free, half of them).
 */
export function connectionBudget(
  configured: number,
  reserve: number,
  count: CountFreeFiles = freeFileDescriptors,
): ConnectionBudget {
  const enough = configured + reserve;
  const free = count(enough);
  if (free === null) return { max: configured, free, atLeast: false };
  const room = free - reserve;
  const max = Math.min(configured, room >= 8 ? room : Math.max(1, Math.floor(free / 2)));
  return { max, free, atLeast: free >= enough };
}
