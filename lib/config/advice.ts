/**
 * Settings that are valid but most likely wrong for how the proxy is reached. `serve` logs each
 * at start and `check` prints each as a warning, with the same words.
 */
import type { Config } from "./schema.ts";
import { isLoopbackHost } from "./hosts.ts";
import { TRUSTED_PROXY_PRESETS } from "./network-rules.ts";

/**
 * A login config whose public URL is not on this machine is reached through a tunnel or a
 * reverse proxy. Without `network.trustedProxies` every request then comes from the tunnel
 * daemon's address (RFC 7239 §1: the proxy hides the client), so all clients share one
 * rate-limit bucket and `network.allow` sees only that address.
 */
export function tunnelAdvice(config: Config): string[] {
  if (!config.auth) return [];
  const tp = config.network.trustedProxies;
  if (tp !== undefined && tp.length > 0) return [];
  const host = new URL(config.auth.publicUrl).hostname;
  if (isLoopbackHost(host)) return [];
  return [
    `publicUrl ${config.auth.publicUrl} is reached through a tunnel or proxy, but ` +
    `network.trustedProxies is not set: every client looks like the tunnel's own address, so ` +
    `all share one rate-limit bucket and network.allow sees only that address. Set it to the ` +
    `tunnel's preset (${TRUSTED_PROXY_PRESETS.map((p) => `"${p}"`).join(", ")}) or to the ` +
    `proxy's CIDRs (docs/tunnels.md)`,
  ];
}
