/** Host-name rules shared by the config sections. */

/** True for `localhost`, `::1` (with or without brackets) and 127.0.0.0/8 literals. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || hostname === "[::1]" ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
