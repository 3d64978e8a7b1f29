/**
 * What `init` collects: the answers a starter config is made of, their defaults and the option
 * that sets each, and the checks of what the config parser cannot know (the shape of the GitHub
 * client ID and of the secret's variable name). init-config.ts renders and validates them.
 */
import { printable } from "./common.ts";
import type { Tunnel } from "./init-tunnels.ts";

/** The variable that holds the GitHub client secret unless `--github-secret-env` names another. */
export const DEFAULT_SECRET_ENV = "GITHUB_CLIENT_SECRET";
/** Where the proxy listens unless `--listen` says otherwise: loopback, for a tunnel. */
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

/** The name of one answer. */
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
export const PLACEHOLDER: InitAnswers = {
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

/** The problem with a variable name for the client secret, if any. */
export function envNameProblem(name: string): string | undefined {
  return ENV_NAME.test(name)
    ? undefined
    : `"${name}" is not a variable name (letters, digits and _, not starting with a digit)`;
}

/**
 * The public URL as the config parser canonicalizes it (WHATWG URL serialization, no trailing
 * slash), for showing what will be written; text that is no URL is kept for its check to name.
 */
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
