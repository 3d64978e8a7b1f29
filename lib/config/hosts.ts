/** Host-name and listen-address rules shared by the config sections. */

/** A listen address: host name or IP literal (without brackets) and port (0: chosen at start). */
export interface Listen {
  hostname: string;
  port: number;
}

/** True for `localhost`, `::1` (with or without brackets) and 127.0.0.0/8 literals. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || hostname === "[::1]" ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** True for the addresses that mean "every interface" (`0.0.0.0`, `::`): nobody dials them. */
export function isWildcardHost(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::";
}

/** Why `parseHostPort` refused `text`: a port out of range, or the shape. */
export function hostPortProblem(text: string): string {
  const port = /:(\d+)$/.exec(text)?.[1];
  if (port !== undefined && Number(port) > 65535) {
    return `port ${port} is out of range: ports go from 1 to 65535 (0 lets the system choose)`;
  }
  return `expected "HOST:PORT" such as "127.0.0.1:8080" or "[::1]:8080"`;
}

/** Parses "127.0.0.1:8080", "[::1]:8080" or "localhost:0". */
export function parseHostPort(text: string): Listen | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { hostname: m[1] ?? m[2], port };
}

/** `host:port` as written in a URL or `--allow-net` (IPv6 in brackets). */
export function formatHostPort(listen: Listen): string {
  const host = listen.hostname.includes(":") ? `[${listen.hostname}]` : listen.hostname;
  return `${host}:${listen.port}`;
}
