/**
 * What `main.ts init` writes and prints: the commented starter config, the GitHub OAuth App
 * settings to enter, and the next steps with each server's URL for ChatGPT and Claude.
 */
import type { Config } from "../config/schema.ts";
import { type Io, shellWord } from "./common.ts";
import type { InitAnswers } from "./init-answers.ts";
import { TUNNELS, tunnelSteps } from "./init-tunnels.ts";

const q = (value: unknown) => JSON.stringify(value);

/** The starter config: JSON with comments explaining each key. */
export function renderConfig(a: InitAnswers): string {
  const users = a.users.map((u) => /^\d+$/.test(u) ? u : q(u)).join(", ");
  const args = `[${a.args.map(q).join(", ")}]`;
  const ghes = a.githubUrl?.replace(/\/+$/, "");
  const github = ghes
    ? [
      `    // GitHub Enterprise Server:`,
      `    "webUrl": ${q(ghes)},`,
      `    "apiUrl": ${q(`${ghes}/api/v3`)},`,
    ]
    : [
      `    // GitHub Enterprise Server instead of github.com:`,
      `    // "webUrl": "https://github.example.com",`,
      `    // "apiUrl": "https://github.example.com/api/v3",`,
    ];
  return [
    `// mcp-oauth-proxy configuration, written by "deno task init".`,
    `// JSON with comments: // and /* */ comments and trailing commas are allowed.`,
    `// docs/configuration.md explains every key; "deno task check-config" checks the file.`,
    `// Relative paths are relative to this file's folder; "\${VAR}" is read from the environment.`,
    `{`,
    `  // Where the proxy listens. Keep it on 127.0.0.1 and point your tunnel at it`,
    `  // (docs/tunnels.md); nothing else on the network can reach it then.`,
    `  "listen": ${q(a.listen)},`,
    ``,
    `  // The https address clients use (your tunnel's): the OAuth issuer and the base of every`,
    `  // URL the proxy advertises. Each server is served at <publicUrl>/mcp/<name>.`,
    `  "publicUrl": ${q(a.publicUrl)},`,
    ``,
    `  // Your GitHub OAuth App. GitHub only confirms who signs in; the proxy issues its own tokens.`,
    `  // Its callback URL is <publicUrl>/auth/callback.`,
    `  "github": {`,
    `    "clientId": ${q(a.clientId)},`,
    `    // Never the secret itself: it is read from this environment variable at start.`,
    `    "clientSecret": ${q(`\${${a.secretEnv}}`)},`,
    ...github,
    `  },`,
    ``,
    `  // Who may sign in; nobody else gets a token. An empty allow-list is an error.`,
    `  "allow": {`,
    `    // GitHub logins or numeric user ids. Ids are safest: a login is pinned to its account at`,
    `    // the first sign-in (find an id at https://api.github.com/users/LOGIN).`,
    `    "users": [${users}],`,
    `    // Active members of organizations or teams (the proxy then asks GitHub for read:org):`,
    `    // "orgs": ["my-org"],`,
    `    // "teams": ["my-org/my-team"],`,
    `  },`,
    ``,
    `  // The proxy's state: a Deno KV store (registered clients, grants, token hashes, keys),`,
    `  // created with mode 0700. "deno task clients list" and "deno task grants list" show it.`,
    `  "dataDir": "./data",`,
    ``,
    `  // The stdio MCP servers, in Claude Desktop's shape; each name becomes /mcp/<name>.`,
    `  "mcpServers": {`,
    `    ${q(a.server)}: {`,
    `      "command": ${q(a.command)},`,
    `      "args": ${args},`,
    `      // Extra environment; the child gets no other variable of the proxy's but PATH, HOME,`,
    `      // USER, LANG, LC_* and TZ:`,
    `      // "env": { "API_KEY": "\${API_KEY}" },`,
    `      // One child per GitHub user (the default), per MCP session, or one for everyone:`,
    `      // "mode": "per-user",  // or "per-session", "shared"`,
    `    },`,
    `  },`,
    ``,
    ...networkSection(a),
    `}`,
    ``,
  ].join("\n");
}

/** The `network` section: the tunnel's preset, or all of it commented out. */
function networkSection(a: InitAnswers): string[] {
  const allow = [
    `Only these sources may call /mcp, /token, /register and /revoke: "openai" (ChatGPT's`,
    `published ranges, downloaded), "anthropic" (Claude's), and CIDRs of your own`,
    `networks for local clients such as Claude Code.`,
  ];
  const { preset, label } = TUNNELS[a.tunnel];
  if (preset) {
    return [
      `  // The network edge (docs/tunnels.md).`,
      `  "network": {`,
      `    // The proxy is behind ${label}: its header gives the real client address. The`,
      `    // preset trusts loopback peers only: keep "listen" on 127.0.0.1.`,
      `    "trustedProxies": ${q(preset)},`,
      ...allow.map((line) => `    // ${line}`),
      `    // "allow": ["openai", "anthropic"],`,
      `  },`,
    ];
  }
  return [
    `  // The network edge (docs/tunnels.md). Uncomment and adapt:`,
    `  // "network": {`,
    `  //   // Which tunnel the proxy is behind, so its header gives the real client address:`,
    `  //   // "tailscale" (Funnel), "cloudflare" (cloudflared) or "ngrok". These presets trust`,
    `  //   // loopback peers only: keep "listen" on 127.0.0.1. Behind another reverse proxy,`,
    `  //   // list its addresses instead, e.g. ["10.0.0.5/32"].`,
    `  //   "trustedProxies": "tailscale",`,
    ...allow.map((line) => `  //   // ${line}`),
    `  //   "allow": ["openai", "anthropic"],`,
    `  // },`,
  ];
}

/** What will be written, shown before "Write …? [Y/n]". */
export function summary(a: InitAnswers, config: Config): string[] {
  const auth = config.auth!;
  const { preset, label } = TUNNELS[a.tunnel];
  const server = config.servers[0];
  return [
    `Summary:`,
    `  tunnel             ${label}${
      preset ? ` (network.trustedProxies "${preset}")` : " (no network.trustedProxies)"
    }`,
    `  public URL         ${auth.publicUrl}`,
    `  GitHub             ${auth.github.webUrl}, Client ID ${auth.github.clientId}`,
    `  client secret      from the environment variable ${a.secretEnv}`,
    `  who may sign in    ${a.users.join(", ")}`,
    `  server             ${server.name}: ${
      [server.command, ...server.args].map(shellWord).join(" ")
    }`,
    `  its URL            ${auth.publicUrl}/mcp/${server.name}`,
    `  listen             ${a.listen}`,
  ];
}

/** Where to create the OAuth App and exactly what to enter. */
export function appSettings(a: Pick<InitAnswers, "publicUrl" | "githubUrl">): string[] {
  const web = a.githubUrl?.replace(/\/+$/, "") ?? "https://github.com";
  const host = new URL(a.publicUrl).host;
  return [
    `Create a GitHub OAuth App at ${web}/settings/developers`,
    `("OAuth Apps", "New OAuth App") and enter exactly:`,
    `  Application name            MCP proxy (${host})`,
    `  Homepage URL                ${a.publicUrl}`,
    `  Authorization callback URL  ${a.publicUrl}/auth/callback`,
    `Leave "Enable Device Flow" off.`,
  ];
}

/** The folder holding main.ts, where `deno task start` runs (null when not run from files). */
function projectFolder(): string | null {
  const url = new URL("../../", import.meta.url);
  return url.protocol === "file:" ? decodeURIComponent(url.pathname).replace(/\/$/, "") : null;
}

export function printNextSteps(io: Io, a: InitAnswers, config: Config, target: string): void {
  const auth = config.auth!;
  const settings = appSettings({ publicUrl: auth.publicUrl, githubUrl: a.githubUrl });
  const root = projectFolder();
  const where = root !== null && target === `${root}/config.json`
    ? ""
    : `MCP_PROXY_CONFIG=${shellWord(target)} `;
  const width = Math.max(...config.servers.map((s) => s.name.length));
  const lines = [
    `Wrote ${target}.`,
    ``,
    `1. ${settings[0]}`,
    ...settings.slice(1).map((line) => `   ${line}`),
    `   Its Client ID must be ${auth.github.clientId} (github.clientId in the config).`,
    `   Then "Generate a new client secret" and copy it.`,
    ``,
    `2. Keep the client secret in the environment variable ${a.secretEnv}, never in the config:`,
    `     read -rs ${a.secretEnv} && export ${a.secretEnv}    # paste it; nothing is shown`,
    `   (for a service: a line ${a.secretEnv}=… in a file only you can read, its EnvironmentFile).`,
    ``,
    `3. Check the config, then start the proxy (in ${root ?? "the project folder"}):`,
    `     ${where}deno task check-config`,
    `     ${where}${a.secretEnv}=… deno task start`,
    ``,
    ...tunnelSteps(a.tunnel, config.listen, auth.publicUrl).map((line, i) =>
      `${i === 0 ? "4. " : "   "}${line}`
    ),
    ``,
    `5. In ChatGPT, first turn on Developer mode (Settings, Apps & Connectors, Advanced`,
    `   settings; it needs a paid plan), then Create. In Claude: Settings, Connectors, Add custom`,
    `   connector. Add each server with its URL:`,
    ...config.servers.map((s) => `     ${s.name.padEnd(width)}  ${auth.publicUrl}/mcp/${s.name}`),
  ];
  for (const line of lines) io.out(line);
}
