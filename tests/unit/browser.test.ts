// Self-test of tests/helpers/browser.ts (headless Chromium over CDP). Needs
// /usr/bin/chromium-headless-shell or /usr/bin/chromium (apt-get install -y
// chromium-headless-shell). Every server binds 127.0.0.1 port 0; every browser is closed in
// `finally`.
import assert from "node:assert/strict";
import { type Browser, defaultBrowser, launchBrowser } from "../helpers/browser.ts";

Deno.test("browser: the headless shell is preferred; without it, chromium", () => {
  assert.equal(defaultBrowser(() => true), "/usr/bin/chromium-headless-shell");
  assert.equal(defaultBrowser(() => false), "/usr/bin/chromium");
  const asked: string[] = [];
  defaultBrowser((path) => (asked.push(path), false));
  assert.deepEqual(asked, ["/usr/bin/chromium-headless-shell"]);
});

interface TestServer {
  url: string;
  requests: { method: string; path: string; body: string; headers: Headers }[];
  close(): Promise<void>;
}

function serve(handler: (req: Request, url: URL) => Response | Promise<Response>): TestServer {
  const requests: TestServer["requests"] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const body = req.body ? await req.text() : "";
    requests.push({
      method: req.method,
      path: url.pathname + url.search,
      body,
      headers: req.headers,
    });
    if (url.pathname === "/favicon.ico") return new Response(null, { status: 204 });
    return handler(req, url);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

const html = (body: string, headers: Record<string, string> = {}) =>
  new Response(
    `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>${body}</body></html>`,
    {
      headers: { "content-type": "text/html; charset=utf-8", ...headers },
    },
  );

/** A loopback port with nothing listening on it. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The tests that need a page, not a browser of their own: they share one Chromium (below). */
const PAGE_TESTS: [name: string, fn: () => Promise<void>][] = [];
let shared: Browser | undefined;

/** Runs `fn` with the Chromium the page tests share. */
async function withBrowser(fn: (browser: Browser) => Promise<void>): Promise<void> {
  await fn(shared!);
}

PAGE_TESTS.push(["click submits a form, the POST arrives, the navigation is awaited", async () => {
  const srv = serve((req, url) => {
    if (url.pathname === "/form") {
      return html(
        `<h1>Consent</h1><form method="post" action="/submit">` +
          `<input type="hidden" name="csrf" value="tok123">` +
          `<input id="who" name="who" value="">` +
          `<button id="approve" name="decision" value="approve">Approve</button></form>`,
      );
    }
    if (url.pathname === "/submit" && req.method === "POST") {
      return new Response(null, { status: 303, headers: { location: "/done?ok=1" } });
    }
    if (url.pathname === "/done") return html(`<p id="msg">done</p>`);
    return new Response("not found", { status: 404 });
  });
  try {
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      const first = await page.goto(`${srv.url}/form`);
      assert.equal(first.status, 200);
      assert.equal(await page.url(), `${srv.url}/form`);
      assert.match(await page.content(), /<h1>Consent<\/h1>/);
      assert.equal(await page.evaluate<string>("document.title + document.forms.length"), "1");
      assert.equal(await page.evaluate<number>("Promise.resolve(6 * 7)"), 42);
      await assert.rejects(page.evaluate("nope.nope"), /evaluate failed: ReferenceError/);

      await page.fill("#who", "octo cat");
      const nav = await page.clickAndWaitForNavigation("#approve");
      assert.equal(nav.url, `${srv.url}/done?ok=1`);
      assert.equal(nav.status, 200);
      assert.equal(nav.errorText, undefined);
      assert.equal(await page.url(), `${srv.url}/done?ok=1`);
      assert.equal(
        await page.evaluate<string>("document.getElementById('msg').textContent"),
        "done",
      );

      const post = srv.requests.find((r) => r.method === "POST");
      assert.ok(post, "the POST arrived");
      assert.equal(post.path, "/submit");
      assert.deepEqual(Object.fromEntries(new URLSearchParams(post.body)), {
        csrf: "tok123",
        who: "octo cat",
        decision: "approve",
      });
      // The CDP log has the POST (with its body) and the redirect hop.
      const postRec = page.requests.find((r) => r.method === "POST");
      assert.equal(postRec?.postData, post.body);
      const hop = page.requests.find((r) => r.url === `${srv.url}/done?ok=1`);
      assert.equal(hop?.redirectStatus, 303);
      assert.deepEqual(
        page.navigations.filter((n) => n.isMainFrame).map((n) => n.url),
        [`${srv.url}/form`, `${srv.url}/done?ok=1`],
      );
    });
  } finally {
    await srv.close();
  }
}]);

PAGE_TESTS.push(["a redirect to a closed loopback port is observable (code readable)", async () => {
  const dead = `http://127.0.0.1:${closedPort()}/callback`;
  const srv = serve((_req, url) => {
    if (url.pathname === "/consent") {
      return html(`<form method="post" action="/approve"><button id="go">Go</button></form>`);
    }
    if (url.pathname === "/approve") {
      return new Response(null, {
        status: 302,
        headers: { location: `${dead}?code=mop_code_abc&state=xyz&iss=https%3A%2F%2Fas` },
      });
    }
    return new Response("not found", { status: 404 });
  });
  try {
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      await page.goto(`${srv.url}/consent`);
      // Without allowNetError the failed navigation is an error with a clear message.
      await assert.rejects(
        page.clickAndWaitForNavigation("#go"),
        /navigation to http:\/\/127\.0\.0\.1:\d+\/callback\?code=mop_code_abc.* failed with net::ERR_CONNECTION_REFUSED/,
      );
      await page.goto(`${srv.url}/consent`);
      const nav = await page.clickAndWaitForNavigation("#go", { allowNetError: true });
      assert.equal(nav.errorText, "net::ERR_CONNECTION_REFUSED");
      assert.ok(nav.url.startsWith(dead));
      assert.ok((await page.url()).startsWith(dead), "url() reports the URL that failed");

      const req = await page.waitForRequest((u) => u.startsWith(dead), 5000);
      const cb = new URL(req.url);
      assert.equal(cb.searchParams.get("code"), "mop_code_abc");
      assert.equal(cb.searchParams.get("state"), "xyz");
      assert.equal(req.redirectStatus, 302);
      assert.equal(req.errorText, "net::ERR_CONNECTION_REFUSED");
      const committed = await page.waitForUrl((u) => u.startsWith(dead), 5000);
      assert.equal(new URL(committed).searchParams.get("code"), "mop_code_abc");
      assert.ok(page.navigations.some((n) => n.unreachable && n.url.startsWith(dead)));
      assert.ok(page.visitedUrls().some((u) => u.startsWith(dead)));

      // goto straight to a dead URL: throws unless allowed.
      await assert.rejects(page.goto(`${dead}?x=1`), /ERR_CONNECTION_REFUSED.*allowNetError/);
      const r = await page.goto(`${dead}?x=2`, { allowNetError: true });
      assert.equal(r.errorText, "net::ERR_CONNECTION_REFUSED");
    });
  } finally {
    await srv.close();
  }
}]);

PAGE_TESTS.push(["framing is reported blocked for XFO DENY + frame-ancestors 'none'", async () => {
  const srv = serve((_req, url) => {
    if (url.pathname === "/deny") {
      return html(`<p>consent</p>`, {
        "x-frame-options": "DENY",
        "content-security-policy": "frame-ancestors 'none'",
      });
    }
    if (url.pathname === "/xfo-only") return html(`<p>x</p>`, { "x-frame-options": "DENY" });
    if (url.pathname === "/open") return html(`<p id="inner">framable</p>`);
    if (url.pathname === "/parent") {
      const src = url.searchParams.get("src") ?? "";
      return html(`<iframe id="f" src="${src.replace(/"/g, "&quot;")}"></iframe>`);
    }
    return new Response("not found", { status: 404 });
  });
  try {
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      // 1. A parent page served by the test server that frames the protected page.
      await page.goto(`${srv.url}/parent?src=${encodeURIComponent(`${srv.url}/deny`)}`);
      const denied = await page.frameStatus(`${srv.url}/deny`);
      assert.equal(denied.blocked, true, JSON.stringify(denied));
      assert.equal(denied.loaded, false);
      assert.equal(denied.errorText, "net::ERR_BLOCKED_BY_RESPONSE");
      assert.match(denied.reason ?? "", /frame-ancestors 'none'/);

      await page.goto(`${srv.url}/parent?src=${encodeURIComponent(`${srv.url}/open`)}`);
      const open = await page.frameStatus(`${srv.url}/open`);
      assert.equal(open.loaded, true, JSON.stringify(open));
      assert.equal(open.blocked, false);
      assert.equal(open.frame?.url, `${srv.url}/open`);
      assert.equal(open.reason, undefined);

      // 2. checkFraming: a throw-away cross-site parent (http://localhost:PORT) frames the URL.
      const a = await page.checkFraming(`${srv.url}/deny`);
      assert.equal(a.blocked, true, JSON.stringify(a));
      assert.match(a.reason ?? "", /frame-ancestors 'none'/);
      const b = await page.checkFraming(`${srv.url}/xfo-only`, { parentHost: "127.0.0.1" });
      assert.equal(b.blocked, true, JSON.stringify(b));
      assert.match(b.reason ?? "", /X-Frame-Options' to 'deny'/);
      const c = await page.checkFraming(`${srv.url}/open`);
      assert.equal(c.loaded, true, JSON.stringify(c));
      assert.equal(c.blocked, false);
      assert.equal(c.reason, undefined);
      assert.ok((await page.frames()).some((f) => f.url === `${srv.url}/open`));
    });
  } finally {
    await srv.close();
  }
}]);

/** Timeouts and close(), on the shared Chromium, which it closes: the last page step. */
async function timeoutsAndClose(browser: Browser): Promise<void> {
  const srv = serve(() => html(`<p>static</p>`));
  let pid = 0;
  let profile = "";
  try {
    try {
      pid = browser.pid;
      profile = browser.userDataDir;
      assert.ok((await Deno.stat(profile)).isDirectory);
      assert.match(browser.wsEndpoint, /^ws:\/\/127\.0\.0\.1:\d+\/devtools\/browser\//);
      // The DevTools HTTP endpoint lists the page targets.
      const page = await browser.newPage();
      await page.goto(`${srv.url}/x`);
      const list = await (await fetch(`${browser.httpEndpoint}/json/list`)).json();
      assert.ok(list.some((t: { url: string }) => t.url === `${srv.url}/x`));

      await assert.rejects(
        page.waitForUrl((u) => u.includes("never"), 300),
        /Timed out after 300 ms waiting for a matching URL \(current URL: http:\/\/127\.0\.0\.1/,
      );
      await assert.rejects(
        page.waitForRequest((u) => u.includes("never"), 300),
        /Timed out after 300 ms waiting for a matching request/,
      );
      await assert.rejects(
        page.waitForSelector("#missing", 300),
        /waiting for selector "#missing"/,
      );
      await assert.rejects(
        page.clickAndWaitForNavigation("#missing", { timeoutMs: 300 }),
        /#missing/,
      );

      // Screenshot (PNG signature).
      const shot = await Deno.makeTempFile({ suffix: ".png" });
      try {
        await page.screenshot(shot);
        const bytes = await Deno.readFile(shot);
        assert.deepEqual([...bytes.slice(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
      } finally {
        await Deno.remove(shot);
      }
    } finally {
      await browser.close();
      await browser.close(); // idempotent
    }
    await assert.rejects(Deno.stat(profile), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`/proc/${pid}`), Deno.errors.NotFound);
  } finally {
    await srv.close();
  }
}

PAGE_TESTS.push(["isolated pages do not share cookies", async () => {
  const srv = serve((_req, url) => {
    if (url.pathname === "/set") {
      return html(`<p>set</p>`, { "set-cookie": "sid=abc; Path=/; HttpOnly; SameSite=Lax" });
    }
    return html(`<p>plain</p>`);
  });
  try {
    await withBrowser(async (browser) => {
      const a = await browser.newPage({ isolated: true });
      const b = await browser.newPage({ isolated: true });
      await a.goto(`${srv.url}/set`);
      await b.goto(`${srv.url}/plain`);
      assert.deepEqual((await a.cookies([srv.url])).map((c) => [c.name, c.value, c.httpOnly]), [
        ["sid", "abc", true],
      ]);
      assert.deepEqual(await b.cookies([srv.url]), []);
      await a.goto(`${srv.url}/again`);
      const again = srv.requests.findLast((r) => r.path === "/again");
      assert.equal(again?.headers.get("cookie"), "sid=abc");
      await a.close();
      await b.close();
    });
  } finally {
    await srv.close();
  }
}]);

PAGE_TESTS.push(["with the fake GitHub, the authorize redirect's code is readable", async () => {
  const { startFakeGitHub } = await import("../fixtures/fake-github.ts");
  const gh = await startFakeGitHub({
    apps: [{ clientId: "cid", clientSecret: "secret" }],
    users: [{ id: 1, login: "octocat" }],
    currentUserId: 1,
  });
  try {
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      const callback = `http://127.0.0.1:${closedPort()}/auth/callback`;
      const authorize = `${gh.webUrl}/login/oauth/authorize?` +
        new URLSearchParams({ client_id: "cid", redirect_uri: callback, state: "st" });
      const nav = await page.goto(authorize, { allowNetError: true });
      assert.equal(nav.errorText, "net::ERR_CONNECTION_REFUSED");
      const hop = await page.waitForRequest((u) => u.startsWith(callback));
      const code = new URL(hop.url).searchParams.get("code");
      assert.equal(code, gh.issuedCodes[0]);
      assert.equal(new URL(hop.url).searchParams.get("state"), "st");
      // The browser's request reached the fake with a browser User-Agent.
      assert.match(gh.requests[0].headers["user-agent"] ?? "", /Chrome\//);
    });
  } finally {
    await gh.close();
  }
}]);

// One Chromium start (about 1.5 s of CPU) for all the page tests, each a step; the test of
// timeouts and of close() comes last, since it closes it.
Deno.test("browser: page tests, on one Chromium", async (t) => {
  // The default wait for each step, generous for a loaded machine; the timeout checks pass their own.
  shared = await launchBrowser({ timeoutMs: 30_000 });
  try {
    for (const [name, fn] of PAGE_TESTS) await t.step(name, fn);
    await t.step(
      "timeouts fail with clear errors; close() kills the process and the profile",
      () => timeoutsAndClose(shared!),
    );
  } finally {
    await shared.close();
    shared = undefined;
  }
});
