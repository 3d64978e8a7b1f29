/**
 * Vendor source-IP range documents (https://developers.openai.com/api/docs/guides/ip-addresses):
 * one `RangeList` per document URL.
 *
 * Downloads are treated as hostile input: https only, no redirects, a byte cap enforced while
 * streaming, a timeout, and whole-document validation before anything is swapped in. A failure
 * never widens access: the last good list stays (persisted across restarts), and a list that
 * never loaded matches nothing.
 * @module
 */
import { CidrError, CidrSet, parseCidr, show } from "../net/cidr.ts";
import { BodyTooLarge, readCapped } from "../http.ts";
import { isRecord } from "../jsonrpc.ts";
import { validateSourceUrl } from "../config/network-rules.ts";

/** The documents behind the `openai` preset, as OpenAI lists them (see above). */
export const OPENAI_RANGE_URLS: readonly string[] = [
  "https://openai.com/chatgpt-connectors.json",
  "https://openai.com/chatgpt-agents.json",
  "https://openai.com/chatgpt-actions.json",
];

/** The range documents a `network` section downloads: the `openai` preset's and `rangeSources`. */
export function rangeDocumentUrls(allow: string[], sources: string[]): string[] {
  return [...new Set([...(allow.includes("openai") ? OPENAI_RANGE_URLS : []), ...sources])];
}

/**
 * The `anthropic` preset; Anthropic publishes HTML only, so it ships built in.
 * Source: https://platform.claude.com/docs/en/api/ip-addresses ("outbound IP addresses":
 * 160.79.104.0/21); the page's newer localized copies also list 153.61.208.0/20.
 * Last checked November 2026; docs/tunnels.md repeats the date.
 */
export const ANTHROPIC_RANGES: readonly string[] = ["160.79.104.0/21", "153.61.208.0/20"];

const MiB = 1024 * 1024;

/** A range document failed validation; nothing from it is used. */
export class RangeDocumentError extends Error {
  override name = "RangeDocumentError";
}

/** A validated document: canonical CIDRs, never empty. */
export interface RangeDocument {
  prefixes: string[];
  creationTime?: string;
}

/** Validate a whole `{creationTime, prefixes:[{ipv4Prefix}|{ipv6Prefix}]}` document or throw. */
export function validateRangeDocument(text: string): RangeDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // The parser's message quotes the body; keep untrusted text out of logs.
    throw new RangeDocumentError("not valid JSON");
  }
  if (!isRecord(doc)) throw new RangeDocumentError("top level is not a JSON object");
  if (doc.creationTime !== undefined && typeof doc.creationTime !== "string") {
    throw new RangeDocumentError("creationTime is not a string");
  }
  if (!Array.isArray(doc.prefixes)) throw new RangeDocumentError("prefixes is not an array");
  // An empty list would silently block every vendor request; treat it as a format change.
  if (doc.prefixes.length === 0) throw new RangeDocumentError("prefixes is empty");
  const prefixes = doc.prefixes.map((entry: unknown, i: number) => {
    const at = `prefixes[${i}]`;
    if (!isRecord(entry)) throw new RangeDocumentError(`${at} is not an object`);
    const has4 = Object.hasOwn(entry, "ipv4Prefix");
    if (has4 === Object.hasOwn(entry, "ipv6Prefix")) {
      throw new RangeDocumentError(`${at} must have exactly one of ipv4Prefix or ipv6Prefix`);
    }
    const key = has4 ? "ipv4Prefix" : "ipv6Prefix";
    const value = entry[key];
    if (typeof value !== "string") throw new RangeDocumentError(`${at}.${key} is not a string`);
    let cidr;
    try {
      cidr = parseCidr(value);
    } catch (e) {
      if (e instanceof CidrError) throw new RangeDocumentError(`${at}.${key}: ${e.message}`);
      throw e;
    }
    // Judge by what was written: `::ffff:1.2.3.0/120` is folded to IPv4 but is still IPv6 text.
    if (has4 === value.includes(":")) {
      throw new RangeDocumentError(
        `${at}.${key} holds an IPv${has4 ? 6 : 4} range: ${show(value)}`,
      );
    }
    return cidr.text;
  });
  const out: RangeDocument = { prefixes };
  if (typeof doc.creationTime === "string") out.creationTime = doc.creationTime;
  return out;
}

/** Persistence for the last good copy of each document (the KV store in production). */
export interface RangeStore {
  load(url: string): Promise<{ text: string; fetchedAt: number } | null>;
  save(url: string, text: string, fetchedAt: number): Promise<void>;
}

/** Log sink; messages are single lines naming the URL. */
export type RangeLog = (level: "info" | "warn" | "error", msg: string) => void;

/** Injected dependencies of a {@link RangeList}. */
export interface RangeListDeps {
  fetch: typeof fetch;
  now: () => number;
  store: RangeStore;
  log: RangeLog;
  /** Body cap in bytes; default 1 MiB. */
  maxBytes?: number;
  /** Whole-download timeout (headers and body); default 10 s. */
  timeoutMs?: number;
}

/** What /healthz shows for one document. */
export interface RangeListStatus {
  url: string;
  count: number;
  fetchedAt: number | null;
  ageSeconds: number | null;
  lastError: string | null;
}

class DownloadError extends Error {}

function oneLine(text: string): string {
  // Log lines must stay one line whatever an upstream error message contains.
  // deno-lint-ignore no-control-regex
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, " ");
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

/** One downloaded range document: its last good CidrSet, refresh and persistence. */
export class RangeList {
  readonly url: string;
  readonly #deps: Required<RangeListDeps>;
  readonly #label: string;
  readonly #closed = new AbortController();
  #set = new CidrSet();
  #fetchedAt: number | null = null;
  #lastError: string | null = null;
  #inFlight: Promise<boolean> | null = null;

  /** Validates the URL (throws RangeSourceError); does no I/O. `label` names a preset in logs. */
  constructor(url: string, deps: RangeListDeps, label?: string) {
    this.url = validateSourceUrl(url);
    this.#deps = { ...deps, maxBytes: deps.maxBytes ?? MiB, timeoutMs: deps.timeoutMs ?? 10_000 };
    this.#label = label ? `range list ${this.url} (preset ${label})` : `range list ${this.url}`;
  }

  /** The last good ranges; empty (matches nothing) until a list has loaded. */
  current(): CidrSet {
    return this.#set;
  }

  /** Count, age and last error for /healthz. */
  status(): RangeListStatus {
    const at = this.#fetchedAt;
    return {
      url: this.url,
      count: this.#set.size,
      fetchedAt: at,
      ageSeconds: at === null ? null : Math.max(0, Math.floor((this.#deps.now() - at) / 1000)),
      lastError: this.#lastError,
    };
  }

  /** Load the persisted copy, re-validated; returns whether one was installed. */
  async loadCached(): Promise<boolean> {
    let saved;
    try {
      saved = await this.#deps.store.load(this.url);
    } catch (e) {
      this.#deps.log("warn", `${this.#label}: cannot read cached copy: ${oneLine(String(e))}`);
      return false;
    }
    if (!saved) return false;
    try {
      if (typeof saved.text !== "string" || !Number.isFinite(saved.fetchedAt)) {
        throw new RangeDocumentError("stored record is malformed");
      }
      const set = new CidrSet(validateRangeDocument(saved.text).prefixes);
      // A download that finished first is newer than anything on disk.
      if (this.#fetchedAt !== null && this.#fetchedAt >= saved.fetchedAt) return false;
      this.#set = set;
      this.#fetchedAt = saved.fetchedAt;
      this.#deps.log("info", `${this.#label}: loaded ${set.size} cached ranges`);
      return true;
    } catch (e) {
      this.#deps.log("warn", `${this.#label}: ignoring corrupt cached copy: ${reason(e)}`);
      return false;
    }
  }

  /** Download, validate and swap in; on failure keep the last good list. Returns success. */
  refresh(): Promise<boolean> {
    // Overlapping callers (timer, manual refresh) share one download.
    this.#inFlight ??= this.#refresh().finally(() => (this.#inFlight = null));
    return this.#inFlight;
  }

  /** Abort any download in flight and ignore its result; the list keeps answering. */
  close(): void {
    this.#closed.abort(new DownloadError("closed"));
  }

  async #refresh(): Promise<boolean> {
    if (this.#closed.signal.aborted) return false;
    const { now, log, store } = this.#deps;
    let text: string;
    let doc: RangeDocument;
    try {
      text = await this.#download();
      doc = validateRangeDocument(text);
    } catch (e) {
      if (this.#closed.signal.aborted) return false;
      this.#lastError = reason(e);
      const keeping = this.#fetchedAt === null
        ? "no good list was ever loaded, so it matches NOTHING (fail closed)"
        : `keeping the last good list (${this.#set.size} ranges, ${this.status().ageSeconds} s old)`;
      log("error", `${this.#label}: refresh failed: ${this.#lastError}; ${keeping}`);
      return false;
    }
    if (this.#closed.signal.aborted) return false;
    const fetchedAt = now();
    this.#set = new CidrSet(doc.prefixes);
    this.#fetchedAt = fetchedAt;
    this.#lastError = null;
    const created = doc.creationTime ? ` (creationTime ${show(doc.creationTime)})` : "";
    log("info", `${this.#label}: loaded ${this.#set.size} ranges${created}`);
    try {
      await store.save(this.url, text, fetchedAt);
    } catch (e) {
      log("warn", `${this.#label}: could not persist the new list: ${oneLine(String(e))}`);
    }
    return true;
  }

  async #download(): Promise<string> {
    const { fetch, maxBytes, timeoutMs } = this.#deps;
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), this.#closed.signal]);
    const res = await fetch(this.url, {
      redirect: "manual",
      signal,
      headers: { accept: "application/json" },
    });
    try {
      if (res.type === "opaqueredirect" || (res.status >= 300 && res.status < 400)) {
        throw new DownloadError(`redirect refused (HTTP ${res.status})`);
      }
      if (res.status !== 200) throw new DownloadError(`HTTP ${res.status}, expected 200`);
      const declared = Number(res.headers.get("content-length") ?? NaN);
      if (declared > maxBytes) throw new DownloadError(`body larger than ${maxBytes} bytes`);
      if (!res.body) throw new DownloadError("empty body");
      const bytes = await readCapped(res.body, maxBytes, signal).catch((e) => {
        throw e instanceof BodyTooLarge
          ? new DownloadError(`body larger than ${maxBytes} bytes`)
          : e;
      });
      try {
        return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        throw new DownloadError("body is not UTF-8");
      }
    } catch (e) {
      if (res.body && !res.bodyUsed) await res.body.cancel().catch(() => {});
      throw e;
    }
  }
}

function reason(e: unknown): string {
  if (e instanceof DOMException && e.name === "TimeoutError") return "timed out";
  if (e instanceof Error) return oneLine(e.message);
  return oneLine(String(e));
}
