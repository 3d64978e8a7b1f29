/**
 * What `main.ts init` prints: the summary before writing, the GitHub OAuth App settings to
 * enter, and the next steps with each server's URL for ChatGPT and Claude.
 */
import type { Config } from "../config/schema.ts";
import { type Io, shellWord } from "./common.ts";
import { endpointPaths } from "../config/merged-schema.ts";
import type { InitAnswers } from "./init-answers.ts";
import { TUNNELS, tunnelSteps } from "./init-tunnels.ts";

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

/**
 * What to do after the file is written: the OAuth App, the secret, checking and starting, the
 * tunnel, and each server's URL to paste into ChatGPT and Claude.
 */
export function printNextSteps(io: Io, a: InitAnswers, config: Config, target: string): void {
  const auth = config.auth!;
  const settings = appSettings({ publicUrl: auth.publicUrl, githubUrl: a.githubUrl });
  const root = projectFolder();
  const where = root !== null && target === `${root}/config.json`
    ? ""
    : `MCP_PROXY_CONFIG=${shellWord(target)} `;
  const width = Math.max(...endpointPaths(config).map((s) => s.name.length));
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
    ...endpointPaths(config).map((s) => `     ${s.name.padEnd(width)}  ${auth.publicUrl}${s.path}`),
  ];
  for (const line of lines) io.out(line);
}
