/**
 * `init`'s options: its usage text, the values they give (checked later, with the answers), and
 * the answers without a terminal, where every required value must come from an option.
 */
import type { Values } from "../args.ts";
import type { Io } from "./common.ts";
import {
  DEFAULT_LISTEN,
  DEFAULT_SECRET_ENV,
  type Field,
  FLAG,
  type Given,
  type InitAnswers,
  splitList,
} from "./init-answers.ts";
import { fieldProblem } from "./init-config.ts";
import { guessTunnel, parseTunnel, type Tunnel } from "./init-tunnels.ts";
import type { INIT_SYNTAX } from "./options.ts";

/** `main.ts init --help`. */
export const INIT_USAGE = `Usage: main.ts init [options]

Writes a commented starter config for login with GitHub and prints the GitHub OAuth App
settings. Asks for what the options do not give when stdin is a terminal; otherwise the
required options must all be given. On a terminal it shows a summary and asks before writing.
Never overwrites a file.

Options:
  -c, --config FILE             where to write (default ./config.json)
      --tunnel NAME             tailscale, cloudflare, ngrok or none: sets
                                network.trustedProxies (default: the tunnel whose
                                domain the public URL is on, e.g. *.ts.net, else
                                asked, or none without a terminal)
      --public-url URL          the https address your tunnel gives you (required)
      --github-client-id ID     the GitHub OAuth App's client ID, 20 characters (required)
      --github-secret-env VAR   the variable holding its client secret
                                (default GITHUB_CLIENT_SECRET)
      --github-url URL          GitHub Enterprise Server, e.g. https://github.example.com
      --allow-user LOGIN_OR_ID  a GitHub user allowed to sign in (required; repeatable)
      --server NAME             the server's name: its URL ends in /mcp/NAME (required)
      --command CMD             the command that starts it, e.g. npx (required)
      --arg A                   one argument of the command (repeatable; write --arg=-y for
                                a value that starts with a dash)
      --listen HOST:PORT        where the proxy listens (default 127.0.0.1:8080)
  -y, --yes                     ask nothing that has a default, and write without confirming
  -h, --help                    show this help

Deno flags: --allow-read and --allow-write of the file to write
("deno task init" grants exactly that file).`;

/** The values the options give, before they are checked. */
export function givenByFlags(values: Values<typeof INIT_SYNTAX.options>): Given {
  return {
    // A public URL on a tunnel's own domain (*.ts.net) tells the tunnel.
    tunnel: values.tunnel === undefined
      ? guessTunnel(values["public-url"])
      : canonicalTunnel(values.tunnel),
    publicUrl: values["public-url"],
    clientId: values["github-client-id"],
    secretEnv: values["github-secret-env"],
    users: values["allow-user"]?.flatMap(splitList),
    server: values.server,
    command: values.command,
    args: values.arg,
    listen: values.listen,
    githubUrl: values["github-url"],
  };
}

/** "Tailscale", "2" → "tailscale"; anything else is kept, for its check to name. */
function canonicalTunnel(text: string): string {
  const tunnel = parseTunnel(text);
  return typeof tunnel === "string" ? tunnel : text;
}

/** Without a terminal: every required value must come from a flag. */
export function fromFlags(given: Given, io: Io): InitAnswers | 2 {
  const required: Field[] = ["publicUrl", "clientId", "users", "server", "command"];
  const missing = required.filter((f) => given[f] === undefined || given[f]!.length === 0);
  if (missing.length) {
    io.err(
      `error: init needs ${
        missing.length === 1 ? "a value" : "values"
      } that no option gave, and stdin is not a terminal to ask. Pass:\n  ${
        missing.map((f) => FLAG[f]).join("\n  ")
      }\n\n${INIT_USAGE}`,
    );
    return 2;
  }
  const tunnel = (given.tunnel as string | undefined) ?? "none";
  const problem = fieldProblem("tunnel", tunnel as Tunnel);
  if (problem) {
    io.err(`error: --tunnel: ${problem}`);
    return 2;
  }
  return {
    tunnel: tunnel as Tunnel,
    publicUrl: given.publicUrl as string,
    clientId: given.clientId as string,
    secretEnv: (given.secretEnv as string | undefined) ?? DEFAULT_SECRET_ENV,
    users: given.users as string[],
    server: given.server as string,
    command: given.command as string,
    args: (given.args as string[] | undefined) ?? [],
    listen: (given.listen as string | undefined) ?? DEFAULT_LISTEN,
    githubUrl: given.githubUrl as string | undefined,
  };
}
