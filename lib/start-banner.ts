/** What a person reads on stdout when the proxy starts. */
import type { LoadedConfig } from "./config/load.ts";
import { endpointPaths } from "./config/merged-schema.ts";

/** What a person reads on stdout at start: each server's URL and where the rest is. */
export function printStart(
  print: (line: string) => void,
  config: LoadedConfig["config"],
  origin: string,
  admin: string,
): void {
  const base = config.auth?.publicUrl ?? origin;
  const all = endpointPaths(config);
  const width = Math.max(...all.map((s) => s.name.length));
  for (const s of all) print(`${s.name.padEnd(width)}  ${base}${s.path}`);
  print(`Owner endpoints (this machine only): ${admin}/metrics ${admin}/healthz`);
  if (config.demo) printDemoHelp(print, origin);
  if (config.auth) {
    print(`GitHub OAuth App callback URL: ${config.auth.publicUrl}/auth/callback`);
  }
}

function printDemoHelp(print: (line: string) => void, origin: string): void {
  print("");
  print("No config.json found: serving the bundled demo server on loopback, without login.");
  print(`Try it with MCP Inspector:  npx @modelcontextprotocol/inspector@latest`);
  print(`  then choose "Streamable HTTP" and enter ${origin}/mcp/demo`);
  print("To serve your own stdio servers, write config.json (see docs/configuration.md),");
  print("for example:");
  print(`  { "mcpServers": { "files": { "command": "npx", "args": ["-y",`);
  print(`      "@modelcontextprotocol/server-filesystem", "/home/me/shared"] } } }`);
}
