/**
 * A minimal headless Chromium driver over the Chrome DevTools Protocol (CDP), for e2e tests.
 *
 * No Playwright/Puppeteer: it launches Debian's Chromium headless shell
 * (`/usr/bin/chromium-headless-shell`, package `chromium-headless-shell`), or `/usr/bin/chromium`
 * (package `chromium`) when the shell is not installed, with a fresh temporary profile and `--remote-debugging-port=0`, reads the `DevTools listening on
 * ws://…` line from stderr, and talks CDP over Deno's built-in WebSocket with flattened
 * sessions (`Target.attachToTarget({flatten: true})`).
 *
 * Usage:
 *   const browser = await launchBrowser();
 *   try {
 *     const page = await browser.newPage();
 *     await page.goto("http://127.0.0.1:1234/authorize?…");
 *     await page.clickAndWaitForNavigation("button#approve", { allowNetError: true });
 *     const hop = await page.waitForRequest((u) => u.startsWith(redirectUri));
 *     new URL(hop.url).searchParams.get("code");
 *   } finally {
 *     await browser.close();
 *   }
 *
 * Navigations to URLs with no server behind them (a client's redirect_uri on a closed port)
 * end on Chrome's error page. They are still recorded: every `Network.requestWillBeSent` URL
 * (redirect hops included) is in `page.requests`, and every committed main-frame navigation in
 * `page.navigations` (for error pages, with the URL that failed). `goto` and
 * `clickAndWaitForNavigation` throw on such network errors unless `{allowNetError: true}`.
 *
 * Safety net: the child gets `http_proxy`/`https_proxy`/`all_proxy` pointing at a closed
 * loopback port. Chrome always bypasses proxies for loopback hosts, so tests on 127.0.0.1 and
 * localhost are unaffected, while anything else Chrome might try to reach fails locally.
 */

/**
 * The headless shell is the same Chromium (same version, same Blink and network stack) without the
 * desktop browser around it: the browser tests cost about a third of the CPU they cost on
 * `chromium --headless` (measured on both browser test files: 24 s -> 9 s).
 */
const HEADLESS_SHELL = "/usr/bin/chromium-headless-shell";
const CHROMIUM = "/usr/bin/chromium";

/** The browser `launchBrowser` starts by default: the headless shell when installed. */
export function defaultBrowser(exists: (path: string) => boolean = isFile): string {
  return exists(HEADLESS_SHELL) ? HEADLESS_SHELL : CHROMIUM;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // An error page retries its failed URL after a second; the retry's request (aborted when the
  // page goes) would then stand for the navigation. The page's own requests only, once each.
  "--disable-auto-reload",
  // Fewer processes: no separate GPU process, one renderer shared by the pages of a context
  // instead of one per site (the tests' pages are all loopback; framing rules do not depend on
  // process isolation). About a quarter less CPU per test file.
  "--in-process-gpu",
  "--renderer-process-limit=1",
  "--disable-site-isolation-trials",
  "--disable-features=site-per-process,IsolateOrigins",
  "--remote-debugging-port=0",
];
const DEFAULT_TIMEOUT_MS = 15_000;

export interface LaunchOptions {
  /** Browser binary; default `defaultBrowser()`. */
  executablePath?: string;
  /** How long to wait for the DevTools endpoint; default 30 s. */
  launchTimeoutMs?: number;
  /** Default timeout for page operations; default 15 s. */
  timeoutMs?: number;
}

export interface RequestRecord {
  requestId: string;
  url: string;
  method: string;
  /** CDP resource type, e.g. "Document", "XHR", "Fetch", "Script". */
  type?: string;
  frameId?: string;
  /** True for document requests of the page's main frame. */
  isMainFrameNavigation: boolean;
  /** Set when this hop is the target of a redirect: the status of the redirect response. */
  redirectStatus?: number;
  postData?: string;
  /**
   * Response status (unset for redirected hops and for requests that got no response; a
   * response can have a status and still fail afterwards, e.g. a refused frame: 200 + errorText).
   */
  status?: number;
  /** Set on Network.loadingFailed, e.g. "net::ERR_CONNECTION_REFUSED". */
  errorText?: string;
  /** Set on Network.loadingFailed when blocked, e.g. "csp", "inspector". */
  blockedReason?: string;
}

export interface NavigationRecord {
  /** The committed URL; for Chrome error pages, the URL that failed to load. */
  url: string;
  /** Set for Chrome error pages (`chrome-error://chromewebdata/`). */
  unreachable: boolean;
  frameId: string;
  isMainFrame: boolean;
}

export interface NavigationResult {
  /** Final URL of the main frame (for an error page, the URL that failed). */
  url: string;
  /** HTTP status of the final document response, when known. */
  status?: number;
  /** Chrome's net error, e.g. "net::ERR_CONNECTION_REFUSED", when the navigation failed. */
  errorText?: string;
}

export interface NavigationOptions {
  timeoutMs?: number;
  /** Do not throw when the navigation ends on a network error page (e.g. a closed port). */
  allowNetError?: boolean;
}

export interface ConsoleMessage {
  /** "log", "error", "warning"… (console API) or the Log domain level. */
  level: string;
  /** "console-api", "log" (browser-generated, e.g. framing refusals) or "exception". */
  source: string;
  text: string;
  url?: string;
}

export interface FrameInfo {
  id: string;
  parentId?: string;
  name?: string;
  /** The frame's document URL (`chrome-error://chromewebdata/` for an error page). */
  url: string;
  /** For error pages: the URL that failed to load. */
  unreachableUrl?: string;
}

export interface FramingResult {
  /** The framed document loaded and rendered. */
  loaded: boolean;
  /** The browser refused to render it in a frame (X-Frame-Options / CSP frame-ancestors). */
  blocked: boolean;
  /** The child frame as seen after the parent's load event. */
  frame?: FrameInfo;
  /** The console message that explains a refusal, when Chrome logged one. */
  reason?: string;
  /** The frame's document request error, e.g. "net::ERR_BLOCKED_BY_RESPONSE". */
  errorText?: string;
  consoleMessages: ConsoleMessage[];
}

export interface Cookie {
  name: string;
  value: string;
  domain: string;
  path: string;
  expires: number;
  httpOnly: boolean;
  secure: boolean;
  sameSite?: string;
}

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: string };
  sessionId?: string;
}

type Listener = (msg: CdpMessage) => void;

// deno-lint-ignore no-explicit-any
type Any = any;

function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms ${what()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class CdpConnection {
  #ws: WebSocket;
  #nextId = 1;
  #pending = new Map<
    number,
    { resolve: (v: Any) => void; reject: (e: Error) => void; method: string }
  >();
  #listeners = new Set<Listener>();
  #closedError: Error | null = null;
  readonly closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    ws.onmessage = (ev) => {
      const msg = JSON.parse(typeof ev.data === "string" ? ev.data : "") as CdpMessage;
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        if (!p) return;
        this.#pending.delete(msg.id);
        if (msg.error) {
          p.reject(
            new Error(`CDP ${p.method} failed: ${msg.error.message} ${msg.error.data ?? ""}`),
          );
        } else p.resolve(msg.result ?? {});
        return;
      }
      for (const l of [...this.#listeners]) l(msg);
    };
    ws.onclose = () => {
      this.#closedError = new Error("CDP connection closed (browser exited?)");
      for (const p of this.#pending.values()) p.reject(this.#closedError);
      this.#pending.clear();
      resolve();
    };
    ws.onerror = () => {/* onclose follows */};
  }

  static async connect(url: string, timeoutMs: number): Promise<CdpConnection> {
    const ws = new WebSocket(url);
    const opened = new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (e) =>
        reject(new Error(`WebSocket to ${url} failed: ${(e as ErrorEvent).message}`));
    });
    try {
      await withTimeout(opened, timeoutMs, () => `connecting to ${url}`);
    } catch (err) {
      try {
        ws.close();
      } catch { /* ignored */ }
      throw err;
    }
    return new CdpConnection(ws);
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Any> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<Any>();
    this.#pending.set(id, { resolve, reject, method });
    this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return promise;
  }

  on(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get isClosed(): boolean {
    return this.#closedError !== null;
  }

  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
      this.#ws.close();
    }
    await this.closed;
  }
}

/** A browser tab driven over a flattened CDP session. */
export class Page {
  readonly #cdp: CdpConnection;
  readonly #sessionId: string;
  readonly targetId: string;
  readonly #browserContextId: string | undefined;
  readonly #timeoutMs: number;
  #mainFrameId = "";
  #off: () => void;
  #closed = false;

  /** Every request the page issued (all frames, redirect hops included), in order. */
  readonly requests: RequestRecord[] = [];
  /** Every committed navigation (main frame and child frames), in order. */
  readonly navigations: NavigationRecord[] = [];
  /** Console output, browser log entries (framing refusals land here) and uncaught exceptions. */
  readonly consoleMessages: ConsoleMessage[] = [];
  /** JavaScript dialogs (alert/confirm/prompt) that were auto-accepted. */
  readonly dialogs: string[] = [];

  #requestsById = new Map<string, RequestRecord>();
  #sessions = new Set<string>();
  #mainCommits = 0;
  #mainLoadedCommit = 0;
  #consoleAtMainCommit = 0;
  #waiters = new Set<() => void>();

  /** @internal Use `Browser.newPage()`. */
  constructor(
    cdp: CdpConnection,
    sessionId: string,
    targetId: string,
    browserContextId: string | undefined,
    timeoutMs: number,
  ) {
    this.#cdp = cdp;
    this.#sessionId = sessionId;
    this.targetId = targetId;
    this.#browserContextId = browserContextId;
    this.#timeoutMs = timeoutMs;
    this.#sessions.add(sessionId);
    this.#off = cdp.on((msg) => {
      if (!msg.method || !msg.sessionId || !this.#sessions.has(msg.sessionId)) return;
      this.#onEvent(msg.method, msg.params ?? {}, msg.sessionId);
      for (const w of [...this.#waiters]) w();
    });
  }

  /** @internal */
  async init(): Promise<void> {
    await this.#enableDomains(this.#sessionId);
    const { frameTree } = await this.#send("Page.getFrameTree");
    this.#mainFrameId = frameTree.frame.id;
  }

  /**
   * Enable the domains we record on a session. Cross-site iframes (out-of-process iframes) are
   * separate targets: auto-attach to them (paused until enabled) so their events are seen too.
   */
  async #enableDomains(sessionId: string): Promise<void> {
    const send = (method: string, params: Record<string, unknown> = {}) =>
      withTimeout(
        this.#cdp.send(method, params, sessionId),
        this.#timeoutMs,
        () => `waiting for CDP ${method}`,
      );
    await Promise.all([
      send("Page.enable"),
      send("Network.enable"),
      send("Runtime.enable"),
      send("Log.enable"),
      send("Target.setAutoAttach", {
        autoAttach: true,
        waitForDebuggerOnStart: true,
        flatten: true,
      }),
    ]);
  }

  async #attachChild(sessionId: string): Promise<void> {
    this.#sessions.add(sessionId);
    try {
      await this.#enableDomains(sessionId);
    } catch { /* the frame may already be gone */ }
    await this.#cdp.send("Runtime.runIfWaitingForDebugger", {}, sessionId).catch(() => {});
  }

  #send(
    method: string,
    params: Record<string, unknown> = {},
    timeoutMs = this.#timeoutMs,
  ): Promise<Any> {
    if (this.#closed) return Promise.reject(new Error(`page is closed (calling ${method})`));
    return withTimeout(
      this.#cdp.send(method, params, this.#sessionId),
      timeoutMs,
      () => `waiting for CDP ${method}`,
    );
  }

  #onEvent(method: string, p: Any, sessionId: string): void {
    const fromMain = sessionId === this.#sessionId;
    switch (method) {
      case "Target.attachedToTarget":
        if (p.targetInfo?.type === "iframe") void this.#attachChild(p.sessionId);
        else this.#cdp.send("Runtime.runIfWaitingForDebugger", {}, p.sessionId).catch(() => {});
        break;
      case "Target.detachedFromTarget":
        this.#sessions.delete(p.sessionId);
        break;
      case "Network.requestWillBeSent": {
        // Chrome's error pages load their images as data: URLs; they are noise.
        if (p.request.url.startsWith("data:") && p.type !== "Document") break;
        const rec: RequestRecord = {
          requestId: p.requestId,
          url: p.request.url + (p.request.urlFragment ?? ""),
          method: p.request.method,
          type: p.type,
          frameId: p.frameId,
          isMainFrameNavigation: fromMain && p.type === "Document" &&
            p.frameId === this.#mainFrameId,
          ...(p.redirectResponse ? { redirectStatus: p.redirectResponse.status } : {}),
          ...(p.request.postData !== undefined ? { postData: p.request.postData } : {}),
        };
        this.requests.push(rec);
        this.#requestsById.set(p.requestId, rec);
        break;
      }
      case "Network.responseReceived": {
        const rec = this.#requestsById.get(p.requestId);
        if (rec) rec.status = p.response.status;
        break;
      }
      case "Network.loadingFailed": {
        const rec = this.#requestsById.get(p.requestId);
        if (rec) {
          rec.errorText = p.errorText;
          if (p.blockedReason) rec.blockedReason = p.blockedReason;
        }
        break;
      }
      case "Page.frameNavigated": {
        const f = p.frame;
        const isMain = fromMain && !f.parentId;
        if (isMain) this.#mainFrameId = f.id;
        this.navigations.push({
          url: f.unreachableUrl ?? f.url + (f.urlFragment ?? ""),
          unreachable: f.unreachableUrl !== undefined,
          frameId: f.id,
          isMainFrame: isMain,
        });
        if (isMain) {
          this.#mainCommits++;
          this.#consoleAtMainCommit = this.consoleMessages.length;
        }
        break;
      }
      case "Page.loadEventFired":
        if (!fromMain) break;
        this.#mainLoadedCommit = this.#mainCommits;
        break;
      case "Runtime.consoleAPICalled":
        this.consoleMessages.push({
          level: p.type,
          source: "console-api",
          text: (p.args ?? []).map((a: Any) => a.value ?? a.description ?? "").join(" "),
        });
        break;
      case "Runtime.exceptionThrown":
        this.consoleMessages.push({
          level: "error",
          source: "exception",
          text: p.exceptionDetails?.exception?.description ?? p.exceptionDetails?.text ?? "",
        });
        break;
      case "Log.entryAdded":
        this.consoleMessages.push({
          level: p.entry.level,
          source: "log",
          text: p.entry.text,
          ...(p.entry.url ? { url: p.entry.url } : {}),
        });
        break;
      case "Page.javascriptDialogOpening":
        this.dialogs.push(p.message);
        this.#cdp.send("Page.handleJavaScriptDialog", { accept: true }, sessionId)
          .catch(() => {});
        break;
    }
  }

  /** Resolve when `check()` returns a value other than undefined; re-checked on every event. */
  #waitFor<T>(check: () => T | undefined, timeoutMs: number, what: () => string): Promise<T> {
    const first = check();
    if (first !== undefined) return Promise.resolve(first);
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const waiter = () => {
      try {
        const v = check();
        if (v !== undefined) resolve(v);
      } catch (err) {
        reject(err as Error);
      }
    };
    this.#waiters.add(waiter);
    // Also poll: some conditions (e.g. DOM state) change without a CDP event.
    const poll = setInterval(waiter, 50);
    return withTimeout(promise, timeoutMs, what).finally(() => {
      this.#waiters.delete(waiter);
      clearInterval(poll);
    });
  }

  /** Wait for a main-frame commit after `commitsBefore`, then for its load event. */
  async #waitForNavigation(
    commitsBefore: number,
    options: NavigationOptions,
    what: string,
  ): Promise<NavigationResult> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    await this.#waitFor(
      () =>
        this.#mainCommits > commitsBefore && this.#mainLoadedCommit === this.#mainCommits
          ? true
          : undefined,
      timeoutMs,
      () => `${what} (current URL: ${this.#lastMainUrl() ?? "?"})`,
    );
    const nav = this.navigations.findLast((n) => n.isMainFrame)!;
    const doc = this.requests.findLast((r) => r.isMainFrameNavigation && r.url === nav.url);
    const result: NavigationResult = { url: nav.url };
    if (doc?.status !== undefined) result.status = doc.status;
    if (nav.unreachable) result.errorText = doc?.errorText ?? "net::ERR_FAILED";
    if (result.errorText && !options.allowNetError) {
      throw new Error(
        `${what}: navigation to ${nav.url} failed with ${result.errorText} ` +
          `(pass {allowNetError: true} if that is expected, e.g. a redirect_uri on a closed port)`,
      );
    }
    return result;
  }

  #lastMainUrl(): string | undefined {
    return this.navigations.findLast((n) => n.isMainFrame)?.url;
  }

  /** Navigate the main frame and wait for its load event. */
  async goto(url: string, options: NavigationOptions = {}): Promise<NavigationResult> {
    const before = this.#mainCommits;
    const res = await this.#send("Page.navigate", { url }, options.timeoutMs ?? this.#timeoutMs);
    if (!res.loaderId) {
      // Same-document navigation (fragment change): nothing to wait for.
      return { url: await this.url() };
    }
    if (res.errorText === "net::ERR_ABORTED") {
      // e.g. a 204 or a download: no new document commits.
      if (options.allowNetError) return { url, errorText: res.errorText };
      throw new Error(`goto ${url}: navigation aborted (${res.errorText})`);
    }
    return await this.#waitForNavigation(before, options, `goto ${url}`);
  }

  /** The main frame's current URL (for an error page, the URL that failed to load). */
  async url(): Promise<string> {
    const { currentIndex, entries } = await this.#send("Page.getNavigationHistory");
    return entries[currentIndex].url;
  }

  /** The main frame's serialized DOM. */
  content(): Promise<string> {
    return this.evaluate<string>(
      "(document.doctype ? new XMLSerializer().serializeToString(document.doctype) + '\\n' : '')" +
        " + document.documentElement.outerHTML",
    );
  }

  /** Evaluate a JavaScript expression in the main frame; promises are awaited; result by value. */
  async evaluate<T>(expression: string): Promise<T> {
    const res = await this.#send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
      userGesture: true,
    });
    if (res.exceptionDetails) {
      const d = res.exceptionDetails;
      throw new Error(
        `evaluate failed: ${d.exception?.description ?? d.text} (expression: ${expression})`,
      );
    }
    return res.result.value as T;
  }

  /** Wait until `selector` matches an element in the main frame. */
  async waitForSelector(selector: string, timeoutMs = this.#timeoutMs): Promise<void> {
    const expr = `document.querySelector(${JSON.stringify(selector)}) !== null`;
    const deadline = Date.now() + timeoutMs;
    while (true) {
      try {
        if (await this.evaluate<boolean>(expr)) return;
      } catch { /* the context may be navigating */ }
      if (Date.now() > deadline) {
        throw new Error(
          `Timed out after ${timeoutMs} ms waiting for selector ${JSON.stringify(selector)} ` +
            `(current URL: ${await this.url().catch(() => "?")})`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Click the centre of the element matching `selector` with real mouse events. */
  async click(selector: string, options: { timeoutMs?: number } = {}): Promise<void> {
    await this.waitForSelector(selector, options.timeoutMs ?? this.#timeoutMs);
    const box = await this.evaluate<{ x: number; y: number; w: number; h: number } | null>(
      `(() => {
        const el = document.querySelector(${JSON.stringify(selector)});
        if (!el) return null;
        el.scrollIntoView({ block: "center", inline: "center" });
        const r = el.getBoundingClientRect();
        return { x: r.left + r.width / 2, y: r.top + r.height / 2, w: r.width, h: r.height };
      })()`,
    );
    if (!box) throw new Error(`click: no element matches ${JSON.stringify(selector)}`);
    if (box.w === 0 || box.h === 0) {
      throw new Error(`click: element ${JSON.stringify(selector)} is not visible (zero size)`);
    }
    const base = { x: box.x, y: box.y, button: "left", clickCount: 1 };
    await this.#send("Input.dispatchMouseEvent", { type: "mouseMoved", x: box.x, y: box.y });
    await this.#send("Input.dispatchMouseEvent", { type: "mousePressed", ...base });
    await this.#send("Input.dispatchMouseEvent", { type: "mouseReleased", ...base });
  }

  /** Click and wait for the main-frame navigation it causes (and its load event). */
  async clickAndWaitForNavigation(
    selector: string,
    options: NavigationOptions = {},
  ): Promise<NavigationResult> {
    const before = this.#mainCommits;
    await this.click(selector, options);
    return await this.#waitForNavigation(
      before,
      options,
      `waiting for navigation after click on ${JSON.stringify(selector)}`,
    );
  }

  /** Set an input's value (focus + insertText, so input events fire). */
  async fill(selector: string, value: string): Promise<void> {
    await this.waitForSelector(selector);
    await this.evaluate(
      `(() => { const el = document.querySelector(${JSON.stringify(selector)});
        el.focus(); if ("select" in el) el.select(); })()`,
    );
    await this.#send("Input.insertText", { text: value });
  }

  /**
   * Wait until the main frame's committed URL satisfies `predicate` (checked against the current
   * URL first). For error pages the URL that failed counts. Returns the URL.
   */
  waitForUrl(
    predicate: (url: string) => boolean,
    timeoutMs = this.#timeoutMs,
  ): Promise<string> {
    return this.#waitFor(
      () => {
        const u = this.#lastMainUrl();
        return u !== undefined && predicate(u) ? u : undefined;
      },
      timeoutMs,
      () => `waiting for a matching URL (current URL: ${this.#lastMainUrl() ?? "?"})`,
    );
  }

  /**
   * Wait for a request (any frame, any redirect hop; past requests count) whose URL satisfies
   * `predicate`. Use it to read `code` from a redirect to a URL with no server behind it.
   */
  waitForRequest(
    predicate: (url: string) => boolean,
    timeoutMs = this.#timeoutMs,
  ): Promise<RequestRecord> {
    return this.#waitFor(
      () => this.requests.find((r) => predicate(r.url)),
      timeoutMs,
      () =>
        `waiting for a matching request (seen: ${
          this.requests.map((r) => r.url).slice(-10).join(", ") || "none"
        })`,
    );
  }

  /** All URLs seen so far: requests (incl. redirect hops) and committed navigations. */
  visitedUrls(): string[] {
    return [
      ...new Set([...this.requests.map((r) => r.url), ...this.navigations.map((n) => n.url)]),
    ];
  }

  /**
   * Replace the page with `html` (as a data: URL document) and wait for its load event.
   * Caveat: the document has an opaque origin, and Chrome's Local Network Access checks refuse
   * its requests to loopback (`net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS`), so it cannot
   * frame or fetch 127.0.0.1 pages: use `checkFraming`, or serve the page from loopback.
   */
  async setContent(html: string, options: NavigationOptions = {}): Promise<NavigationResult> {
    const bytes = new TextEncoder().encode(html);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return await this.goto(`data:text/html;charset=utf-8;base64,${btoa(bin)}`, options);
  }

  /** The frame tree, flattened (main frame first), including out-of-process (cross-site) frames. */
  async frames(): Promise<FrameInfo[]> {
    const out: FrameInfo[] = [];
    const seen = new Set<string>();
    const walk = (node: Any) => {
      const f = node.frame;
      if (!seen.has(f.id)) {
        seen.add(f.id);
        out.push({
          id: f.id,
          ...(f.parentId ? { parentId: f.parentId } : {}),
          ...(f.name ? { name: f.name } : {}),
          url: f.url,
          ...(f.unreachableUrl ? { unreachableUrl: f.unreachableUrl } : {}),
        });
      }
      for (const child of node.childFrames ?? []) walk(child);
    };
    walk((await this.#send("Page.getFrameTree")).frameTree);
    for (const sessionId of this.#sessions) {
      if (sessionId === this.#sessionId) continue;
      const res = await withTimeout(
        this.#cdp.send("Page.getFrameTree", {}, sessionId),
        this.#timeoutMs,
        () => "waiting for CDP Page.getFrameTree (child frame)",
      ).catch(() => null);
      if (res) walk(res.frameTree);
    }
    return out;
  }

  /**
   * Report whether the current page's child frame for `frameUrl` loaded or was refused by
   * X-Frame-Options / CSP frame-ancestors. Call it after the parent page loaded (e.g. after
   * `goto` of your own parent page on loopback). Signals used: the frame's document request
   * failing with `net::ERR_BLOCKED_BY_RESPONSE`, or the frame committing Chrome's error page
   * (blocked); the frame committing its document (loaded).
   */
  async frameStatus(
    frameUrl: string | ((url: string) => boolean),
    timeoutMs = this.#timeoutMs,
  ): Promise<FramingResult> {
    const matches = typeof frameUrl === "string" ? (u: string) => sameUrl(u, frameUrl) : frameUrl;
    const label = typeof frameUrl === "string" ? frameUrl : "a matching URL";
    const outcome = await this.#waitFor(
      () => {
        const nav = this.navigations.findLast((n) => !n.isMainFrame && matches(n.url));
        const req = this.requests.findLast((r) =>
          r.type === "Document" && !r.isMainFrameNavigation && matches(r.url)
        );
        if (req?.errorText) return { nav, req };
        if (nav) return { nav, req };
        return undefined;
      },
      timeoutMs,
      () => `waiting for a child frame for ${label}`,
    );
    const { nav, req } = outcome;
    const refusedByResponse = req?.errorText === "net::ERR_BLOCKED_BY_RESPONSE";
    const blocked = refusedByResponse ||
      (nav?.unreachable === true && req?.errorText === undefined);
    const loaded = !blocked && nav !== undefined && !nav.unreachable;
    const all = await this.frames();
    const frame = nav ? all.find((f) => f.id === nav.frameId) : undefined;
    // Messages logged since the parent document committed; refusals name the framed origin.
    const origin = req ? new URL(req.url).origin : nav ? new URL(nav.url).origin : "";
    const findReason = () =>
      this.consoleMessages.slice(this.#consoleAtMainCommit).find((m) =>
        /X-Frame-Options|frame-ancestors/i.test(m.text) && m.text.includes(origin)
      )?.text.trim();
    // The refusal is logged around the same time as the failure; give it a moment to arrive.
    const reason = blocked
      ? await this.#waitFor(findReason, 1000, () => "").catch(() => undefined)
      : findReason();
    const messages = this.consoleMessages.slice(this.#consoleAtMainCommit);
    const result: FramingResult = { loaded, blocked, consoleMessages: messages };
    if (frame) result.frame = frame;
    if (reason) result.reason = reason;
    if (req?.errorText) result.errorText = req.errorText;
    return result;
  }

  /**
   * Load a parent page that iframes `url`, and report whether the frame loaded or was refused by
   * X-Frame-Options / CSP frame-ancestors. The parent is served for the duration of the call
   * from a throw-away server on 127.0.0.1 port 0, reached as `http://<parentHost>:<port>/`
   * (default host `localhost`, so that a 127.0.0.1 target is cross-site like a real attacker's
   * page; pass `"127.0.0.1"` for a same-site, cross-origin parent).
   */
  async checkFraming(
    url: string,
    options: { timeoutMs?: number; parentHost?: string } = {},
  ): Promise<FramingResult> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const html = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>framing probe</title>` +
      `<link rel="icon" href="data:,">` +
      `</head><body><iframe id="probe" src="${escapeAttr(url)}" width="600" height="400">` +
      `</iframe></body></html>`;
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () => new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } }),
    );
    try {
      const parent = `http://${options.parentHost ?? "localhost"}:${server.addr.port}/`;
      await this.goto(parent, { timeoutMs });
      return await this.frameStatus(url, timeoutMs);
    } finally {
      await server.shutdown();
    }
  }

  /** Cookies visible to the page (all URLs if none given). */
  async cookies(urls?: string[]): Promise<Cookie[]> {
    const { cookies } = await this.#send("Network.getCookies", urls ? { urls } : {});
    return cookies as Cookie[];
  }

  /**
   * Save a PNG screenshot of the viewport; with `width`, of the whole page laid out at that width
   * (the viewport is resized to the page's height first).
   */
  async screenshot(path: string, options: { width?: number } = {}): Promise<void> {
    if (options.width) {
      const metrics = { width: options.width, deviceScaleFactor: 1, mobile: false };
      await this.#send("Emulation.setDeviceMetricsOverride", { ...metrics, height: 600 });
      const height = await this.evaluate<number>(
        "Math.ceil(document.body.getBoundingClientRect().bottom) + 48",
      );
      await this.#send("Emulation.setDeviceMetricsOverride", { ...metrics, height });
    }
    const { data } = await this.#send("Page.captureScreenshot", { format: "png" });
    const bin = atob(data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    await Deno.writeFile(path, bytes);
  }

  /** Close the tab (and its isolated browser context, if any). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#off();
    this.#waiters.clear();
    if (this.#cdp.isClosed) return;
    await this.#cdp.send("Target.closeTarget", { targetId: this.targetId }).catch(() => {});
    if (this.#browserContextId) {
      await this.#cdp.send("Target.disposeBrowserContext", {
        browserContextId: this.#browserContextId,
      }).catch(() => {});
    }
  }
}

function escapeAttr(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}

/** A headless Chromium process with a temporary profile. */
export class Browser {
  readonly #child: Deno.ChildProcess;
  readonly #cdp: CdpConnection;
  readonly #userDataDir: string;
  readonly #stderrPump: Promise<void>;
  readonly #stderrTail: string[];
  readonly #timeoutMs: number;
  readonly #pages = new Set<Page>();
  readonly pid: number;
  /** `ws://127.0.0.1:PORT/devtools/browser/…` */
  readonly wsEndpoint: string;
  #closing: Promise<void> | null = null;

  /** @internal Use `launchBrowser()`. */
  constructor(
    child: Deno.ChildProcess,
    cdp: CdpConnection,
    userDataDir: string,
    wsEndpoint: string,
    stderrPump: Promise<void>,
    stderrTail: string[],
    timeoutMs: number,
  ) {
    this.#child = child;
    this.pid = child.pid;
    this.#cdp = cdp;
    this.#userDataDir = userDataDir;
    this.wsEndpoint = wsEndpoint;
    this.#stderrPump = stderrPump;
    this.#stderrTail = stderrTail;
    this.#timeoutMs = timeoutMs;
  }

  /** `http://127.0.0.1:PORT` of the DevTools HTTP endpoint (`/json/list`, `/json/version`). */
  get httpEndpoint(): string {
    const u = new URL(this.wsEndpoint);
    return `http://${u.host}`;
  }

  /** The temporary profile directory (removed by `close()`). */
  get userDataDir(): string {
    return this.#userDataDir;
  }

  /** Recent stderr lines of the browser, for diagnostics. */
  get stderrTail(): string[] {
    return [...this.#stderrTail];
  }

  /**
   * Open a new tab. With `{isolated: true}` it gets its own browser context (fresh cookies and
   * storage, like an incognito window), disposed when the page closes.
   */
  async newPage(options: { isolated?: boolean } = {}): Promise<Page> {
    const send = (method: string, params: Record<string, unknown> = {}) =>
      withTimeout(this.#cdp.send(method, params), this.#timeoutMs, () => `waiting for ${method}`);
    let browserContextId: string | undefined;
    if (options.isolated) {
      ({ browserContextId } = await send("Target.createBrowserContext", { disposeOnDetach: true }));
    }
    const { targetId } = await send("Target.createTarget", {
      url: "about:blank",
      ...(browserContextId ? { browserContextId } : {}),
    });
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this.#cdp, sessionId, targetId, browserContextId, this.#timeoutMs);
    await page.init();
    this.#pages.add(page);
    return page;
  }

  /** Close the browser: CDP `Browser.close`, then SIGTERM/SIGKILL by PID; remove the profile. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    for (const page of this.#pages) await page.close().catch(() => {});
    const exited = this.#child.status.then(() => true);
    const waitExit = (ms: number) =>
      Promise.race([
        exited,
        new Promise<false>((r) => {
          const t = setTimeout(() => r(false), ms);
          exited.then(() => clearTimeout(t));
        }),
      ]);
    if (!this.#cdp.isClosed) {
      await withTimeout(this.#cdp.send("Browser.close"), 3000, () => "closing the browser")
        .catch(() => {});
    }
    if (!(await waitExit(5000))) {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* already gone */ }
      if (!(await waitExit(5000))) {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    }
    await this.#child.status;
    await this.#cdp.close();
    await this.#stderrPump;
    for (let i = 0; i < 10; i++) {
      try {
        await Deno.remove(this.#userDataDir, { recursive: true });
        break;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Launch headless Chromium with a fresh temporary profile. Always `await browser.close()`. */
export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  const executable = options.executablePath ?? defaultBrowser();
  const launchTimeoutMs = options.launchTimeoutMs ?? 30_000;
  const userDataDir = await Deno.makeTempDir({ prefix: "mcp-oauth-proxy-chromium-" });
  const deadProxy = "http://127.0.0.1:9";
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(executable, {
      args: [...CHROMIUM_FLAGS, `--user-data-dir=${userDataDir}`],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: {
        http_proxy: deadProxy,
        https_proxy: deadProxy,
        all_proxy: deadProxy,
        HTTP_PROXY: deadProxy,
        HTTPS_PROXY: deadProxy,
        ALL_PROXY: deadProxy,
        no_proxy: "",
        NO_PROXY: "",
      },
    }).spawn();
  } catch (err) {
    await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    throw new Error(
      `could not start ${executable} (install it with: apt-get install -y chromium-headless-shell): ${err}`,
    );
  }

  // Pump stderr for the whole life of the process: find the DevTools line, keep a tail.
  const tail: string[] = [];
  const { promise: endpoint, resolve: gotEndpoint, reject: noEndpoint } = Promise.withResolvers<
    string
  >();
  endpoint.catch(() => {});
  const pump = (async () => {
    let buf = "";
    let found = false;
    try {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trimEnd();
          buf = buf.slice(nl + 1);
          tail.push(line);
          if (tail.length > 50) tail.shift();
          const m = line.match(/DevTools listening on (ws:\/\/\S+)/);
          if (m && !found) {
            found = true;
            gotEndpoint(m[1]);
          }
        }
      }
    } catch { /* stream closed */ }
    noEndpoint(new Error(`browser exited before DevTools was ready; stderr:\n${tail.join("\n")}`));
  })();

  const fail = async (err: unknown): Promise<never> => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await pump;
    await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    throw err;
  };

  let wsEndpoint: string;
  let cdp: CdpConnection;
  try {
    wsEndpoint = await withTimeout(
      endpoint,
      launchTimeoutMs,
      () => `waiting for "DevTools listening on" from ${executable}; stderr:\n${tail.join("\n")}`,
    );
    cdp = await CdpConnection.connect(wsEndpoint, launchTimeoutMs);
  } catch (err) {
    return await fail(err);
  }
  return new Browser(
    child,
    cdp,
    userDataDir,
    wsEndpoint,
    pump,
    tail,
    options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  );
}
