/**
 * The starter config `init` writes: rendered as commented JSON from the answers, and judged by
 * the real config parser (one field at a time, the others stand-ins), so what is written is
 * exactly what `serve` accepts.
 */
import { ConfigError } from "../config/check.ts";
import { parseConfigText } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import {
  clientIdProblem,
  envNameProblem,
  type Field,
  FLAG,
  type InitAnswers,
  PLACEHOLDER,
} from "./init-answers.ts";
import { parseTunnel, TUNNELS } from "./init-tunnels.ts";

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
    `  // With several servers: also serve all of them at <publicUrl>/mcp as one connector, tools`,
    `  // named <server>__<tool> (docs/endpoints.md, "The merged endpoint"):`,
    `  // "merged": { "enabled": true },`,
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

/** The problem with one field's value, checked by the real parser (others are placeholders). */
export function fieldProblem<F extends Field>(field: F, value: InitAnswers[F]): string | undefined {
  if (field === "secretEnv") return envNameProblem(value as string);
  if (field === "tunnel") {
    const tunnel = parseTunnel(value as string);
    return typeof tunnel === "string" ? undefined : tunnel.problem;
  }
  if (field === "clientId" && clientIdProblem(value as string)) {
    return clientIdProblem(value as string);
  }
  const result = validate({ ...PLACEHOLDER, [field]: value }, "/config.json");
  return "problems" in result ? result.problems.join("; ") : undefined;
}

/** Renders the starter config and parses it with the real parser, as `serve` would. */
export function validate(
  answers: InitAnswers,
  target: string,
): { text: string; config: Config } | { problems: string[] } {
  const shape = [
    ["github.clientId", clientIdProblem(answers.clientId)],
    ["--github-secret-env", envNameProblem(answers.secretEnv)],
  ].filter(([, problem]) => problem).map(([key, problem]) => `${key}: ${problem}`);
  if (shape.length) return { problems: shape };
  const parse = (text: string) =>
    parseConfigText(text, {
      source: target,
      // The secret is set only when the proxy starts: treat its variable as set.
      env: (name) => name === answers.secretEnv ? "set-when-the-proxy-starts" : undefined,
    }).config;
  try {
    let text = renderConfig(answers);
    let config = parse(text);
    // Write the canonical public URL (no trailing slash, lower-case host), as it is advertised.
    const canonical = config.auth?.publicUrl;
    if (canonical && canonical !== answers.publicUrl) {
      text = renderConfig({ ...answers, publicUrl: canonical });
      config = parse(text);
    }
    return { text, config };
  } catch (error) {
    if (error instanceof ConfigError) return { problems: error.problems };
    throw error;
  }
}

/** Adds the option that sets each key to the problems, for the non-interactive error. */
export function describe(problems: string[]): string {
  const byKey: [string, Field][] = [
    ["publicUrl", "publicUrl"],
    ["github.clientId", "clientId"],
    ["github.webUrl", "githubUrl"],
    ["github.apiUrl", "githubUrl"],
    ["allow", "users"],
    ["listen", "listen"],
  ];
  return problems.map((p) => {
    let field = byKey.find(([key]) => p.startsWith(key))?.[1];
    if (!field && p.startsWith("mcpServers")) {
      field = /\.args\b/.test(p) ? "args" : /\.command\b/.test(p) ? "command" : "server";
    }
    return field ? `${p} (${FLAG[field].split(" ")[0]})` : p;
  }).join("\n  ");
}
