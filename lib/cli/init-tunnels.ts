/**
 * The tunnels `init` knows: what to call each, the `network.trustedProxies` preset it writes, how
 * to find the public URL, and the commands that start the tunnel (as docs/tunnels.md gives them).
 */
import type { TrustedProxyPreset } from "../config/network-rules.ts";
import type { Listen } from "../config/schema.ts";

/** The tunnels `init` offers, in the order of its menu. */
export const TUNNEL_CHOICES = ["tailscale", "cloudflare", "ngrok", "none"] as const;
/** One of `TUNNEL_CHOICES`. */
export type Tunnel = typeof TUNNEL_CHOICES[number];

interface TunnelInfo {
  label: string;
  /** The preset written to `network.trustedProxies`; none for "none/other". */
  preset?: TrustedProxyPreset;
  /** Hosts this tunnel's public URLs have, to guess the tunnel from a given public URL. */
  hosts?: RegExp;
  /** Where the public URL comes from, shown before it is asked. */
  urlHelp: string[];
  /** The commands that start the tunnel towards `target` (http://127.0.0.1:8080). */
  commands(target: string, listen: Listen, publicUrl: URL): string[];
}

/** What `init` knows of each tunnel (docs/tunnels.md). */
export const TUNNELS: Record<Tunnel, TunnelInfo> = {
  tailscale: {
    label: "Tailscale Funnel",
    preset: "tailscale",
    hosts: /\.ts\.net$/,
    urlHelp: [
      "Tailscale Funnel's address is https://<machine>.<tailnet>.ts.net: `tailscale funnel` prints",
      "it (docs/tunnels.md#tailscale-funnel).",
    ],
    commands: (target, listen) => [
      `sudo tailscale set --operator=$USER    # once, on Linux (or run the next line with sudo)`,
      `tailscale funnel --bg ${
        listen.hostname === "127.0.0.1" || listen.hostname === "localhost" ? listen.port : target
      }`,
    ],
  },
  cloudflare: {
    label: "Cloudflare Tunnel",
    preset: "cloudflare",
    hosts: /\.trycloudflare\.com$/,
    urlHelp: [
      "A Cloudflare named tunnel's address is a host name on your domain, e.g.",
      "https://mcp.example.com (docs/tunnels.md#cloudflare-tunnel).",
    ],
    commands: (target, _, url) =>
      url.hostname.endsWith(".trycloudflare.com")
        ? [
          `cloudflared tunnel --url ${target}`,
          `# A quick tunnel gets a new address on every run: publicUrl and the GitHub OAuth`,
          `# App's callback URL would have to change with it. A named tunnel keeps its address`,
          `# (docs/tunnels.md#cloudflare-tunnel).`,
        ]
        : [
          `cloudflared tunnel login    # once: authorize your domain`,
          `cloudflared tunnel create mcp`,
          `cloudflared tunnel route dns mcp ${url.hostname}`,
          `cloudflared tunnel run --url ${target} mcp`,
        ],
  },
  ngrok: {
    label: "ngrok",
    preset: "ngrok",
    hosts: /\.ngrok(?:-free)?\.(?:app|dev|io)$/,
    urlHelp: [
      "ngrok's address is your account's domain, e.g. https://<name>.ngrok-free.app",
      "(the ngrok dashboard shows it; docs/tunnels.md#ngrok).",
    ],
    commands: (target, _, url) => [
      `ngrok config add-authtoken <token>    # once, from the ngrok dashboard`,
      `ngrok http --url=${url.host} ${target.replace(/^http:\/\//, "")}`,
    ],
  },
  none: {
    label: "none/other",
    urlHelp: [
      "The https address that reaches this machine (your reverse proxy's or tunnel's), e.g.",
      "https://mcp.example.com.",
    ],
    commands: (target) => [
      `Point your reverse proxy or tunnel at ${target}, and list its addresses in`,
      `network.trustedProxies (docs/tunnels.md#another-reverse-proxy).`,
    ],
  },
};

/** "2", "ngrok", "Cloudflare" → the tunnel; a problem for anything else. */
export function parseTunnel(text: string): Tunnel | { problem: string } {
  const word = text.trim().toLowerCase();
  const byNumber = /^[1-9]$/.test(word) ? TUNNEL_CHOICES[Number(word) - 1] : undefined;
  const found = byNumber ??
    TUNNEL_CHOICES.find((t) =>
      t === word || TUNNELS[t].label.toLowerCase() === word ||
      (t === "none" && word === "other")
    );
  return found ?? {
    problem: `expected 1-${TUNNEL_CHOICES.length} or one of ${TUNNEL_CHOICES.join(", ")}`,
  };
}

/** The tunnel a public URL's host name belongs to, if it tells. */
export function guessTunnel(publicUrl: string | undefined): Tunnel | undefined {
  let host: string;
  try {
    host = new URL(publicUrl ?? "").hostname;
  } catch {
    return undefined;
  }
  return TUNNEL_CHOICES.find((t) => TUNNELS[t].hosts?.test(host));
}

/** The numbered list shown before the tunnel is asked. */
export function tunnelMenu(): string[] {
  return [
    "Which tunnel gives this machine its public https address? (docs/tunnels.md)",
    ...TUNNEL_CHOICES.map((t, i) => `  ${i + 1}. ${TUNNELS[t].label}`),
  ];
}

/** The lines of the next steps that start the tunnel. */
export function tunnelSteps(tunnel: Tunnel, listen: Listen, publicUrl: string): string[] {
  const host = listen.hostname.includes(":") ? `[${listen.hostname}]` : listen.hostname;
  const target = `http://${host}:${listen.port}`;
  const url = new URL(publicUrl);
  const info = TUNNELS[tunnel];
  if (tunnel === "none") return info.commands(target, listen, url);
  return [
    `Start ${info.label} so that ${url.origin} reaches ${target}:`,
    ...info.commands(target, listen, url).map((line) => `  ${line}`),
  ];
}
