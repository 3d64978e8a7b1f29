/**
 * The `network` section: the source-IP allow-list (CIDRs, vendor presets, range documents), the
 * trusted proxies whose forwarded headers are believed, and how often range lists refresh.
 * The rules are in network-rules.ts; the edge modules apply the same ones when they are built.
 */
import {
  boolean,
  Checker,
  duration,
  type JsonObject,
  knownKeys,
  NetworkConfigError,
  object,
  string,
  stringArray,
} from "./check.ts";
import { validateNetwork } from "./network-rules.ts";

/** The `network` section, normalised. */
export interface NetworkSettings {
  /** CIDRs and presets (`openai`, `anthropic`). */
  allow: string[];
  /** Extra range document URLs in the OpenAI JSON shape. */
  rangeSources: string[];
  /** A preset name, or CIDRs of proxies whose forwarded header is believed. Default: none. */
  trustedProxies?: string | string[];
  /** Header walked with a CIDR list (ignored by presets, which fix their own). */
  clientIpHeader?: string;
  /** Between refreshes of the downloaded range documents. */
  refreshIntervalMs: number;
  /** Also apply the allow-list to the metadata documents (off by default: they are public). */
  protectMetadata: boolean;
}

export const NETWORK_KEYS = [
  "allow",
  "rangeSources",
  "trustedProxies",
  "clientIpHeader",
  "refreshInterval",
  "protectMetadata",
] as const;

const HOUR = 3_600_000;

/** Reads `network`; absent means no allow-list and no trusted proxies. */
export function parseNetwork(ck: Checker, root: JsonObject): NetworkSettings {
  const section = object(ck, root.network, "network") ?? {};
  knownKeys(ck, section, "network", NETWORK_KEYS);
  const allow = stringArray(ck, section, "allow", "network") ?? [];
  const rangeSources = stringArray(ck, section, "rangeSources", "network") ?? [];
  let trustedProxies: string | string[] | undefined;
  const tp = section.trustedProxies;
  if (typeof tp === "string") trustedProxies = tp;
  else if (tp !== undefined) trustedProxies = stringArray(ck, section, "trustedProxies", "network");
  const clientIpHeader = string(ck, section, "clientIpHeader", "network", { nonEmpty: true });
  const settings: NetworkSettings = {
    allow,
    rangeSources,
    trustedProxies,
    clientIpHeader,
    refreshIntervalMs:
      duration(ck, section, "refreshInterval", "network", { min: 60_000, max: 7 * 24 * HOUR }) ??
        12 * HOUR,
    protectMetadata: boolean(ck, section, "protectMetadata", "network") ?? false,
  };
  try {
    validateNetwork(settings);
  } catch (error) {
    if (!(error instanceof NetworkConfigError)) throw error;
    ck.fail(error.path, error.reason);
  }
  return settings;
}
