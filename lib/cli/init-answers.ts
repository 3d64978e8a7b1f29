/**
 * What `init` asks for and how each answer is checked: the real config parser judges the values
 * that end up in the file (one field at a time, the others stand-ins), plus the shape of the
 * GitHub client ID and of the secret's variable name, which the parser cannot know.
 */
import { ConfigError } from "../config/check.ts";
import { parseConfigText } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { printable } from "./common.ts";
import { renderConfig } from "./init-output.ts";
import { parseTunnel, type Tunnel } from "./init-tunnels.ts";

export const DEFAULT_SECRET_ENV = "GITHUB_CLIENT_SECRET";
export const DEFAULT_LISTEN = "127.0.0.1:8080";
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Everything the starter config is made of. */
export interface InitAnswers {
  tunnel: Tunnel;
  publicUrl: string;
  clientId: string;
  secretEnv: string;
  users: string[];
  server: string;
  command: string;
  args: string[];
  listen: string;
  /** GitHub Enterprise Server web URL; undefined for github.com. */
  githubUrl?: string;
}

export type Field = keyof InitAnswers;

/** Values as the options give them, before they are checked. */
export type Given = Partial<Record<Field, string | string[]>>;

/** The option that sets each field, for messages. */
export const FLAG: Record<Field, string> = {
  tunnel: "--tunnel NAME",
  publicUrl: "--public-url URL",
  clientId: "--github-client-id ID",
  secretEnv: "--github-secret-env VAR",
  users: "--allow-user LOGIN_OR_ID",
  server: "--server NAME",
  command: "--command CMD",
  args: "--arg A",
  listen: "--listen HOST:PORT",
  githubUrl: "--github-url URL",
};

/** Stand-ins for the fields not being checked, so one field can be validated on its own. */
const PLACEHOLDER: InitAnswers = {
  tunnel: "none",
  publicUrl: "https://example.com",
  clientId: "Ov23liPlaceholder000",
  secretEnv: DEFAULT_SECRET_ENV,
  users: ["octocat"],
  server: "files",
  command: "npx",
  args: [],
  listen: DEFAULT_LISTEN,
};

/** A copy of the stand-ins, for answers being collected. */
export function placeholderAnswers(): InitAnswers {
  return { ...PLACEHOLDER, users: [...PLACEHOLDER.users], args: [] };
}

/**
 * The shape of a GitHub OAuth App's (or GitHub App's) client ID: 20 characters, `Ov23li…`,
 * `Iv23li…`, `Iv1.` and 16 hex digits, or 20 hex digits for older apps (GitHub Docs, "Authorizing
 * OAuth apps": the client ID the app's settings page shows).
 */
export function clientIdProblem(id: string): string | undefined {
  if (/^[0-9a-f]{40}$/i.test(id)) {
    return "that looks like the client secret (40 hex digits): the Client ID is the shorter " +
      "value above it, 20 characters such as Ov23liAbCdEfGh123456";
  }
  if (/^[A-Za-z0-9.]{20}$/.test(id)) return undefined;
  return `"${printable(id, 44)}" is not a GitHub Client ID: it has 20 letters and digits, such ` +
    `as Ov23liAbCdEfGh123456 (20 hex digits for older apps)`;
}

function envNameProblem(name: string): string | undefined {
  return ENV_NAME.test(name)
    ? undefined
    : `"${name}" is not a variable name (letters, digits and _, not starting with a digit)`;
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

export function canonicalPublicUrl(text: string): string {
  try {
    const url = new URL(text);
    return url.origin + url.pathname.replace(/\/+$/, "");
  } catch {
    return text;
  }
}

/** "a, b c" → ["a", "b", "c"] */
export function splitList(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}

/** Splits a line into words as a shell would for plain quoting; null for an unclosed quote. */
export function splitWords(line: string): string[] | null {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && (line[i + 1] === '"' || line[i + 1] === "\\")) {
        word += line[++i];
      } else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) return null;
  if (inWord) words.push(word);
  return words;
}
