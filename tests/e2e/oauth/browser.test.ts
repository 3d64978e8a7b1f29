/**
 * The authorization flow in real headless Chromium (consent against the confused deputy:
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices): the
 * consent page renders with its Allow and Deny buttons, Allow goes through the fake GitHub and back
 * to the client's redirect URI with a code, Deny returns `access_denied`, and a page that frames
 * the consent URL is refused. The client's redirect URI is a closed loopback port: the code is read
 * from the navigation the browser recorded. Needs /usr/bin/chromium.
 */
import assert from "node:assert/strict";
import { type Browser, launchBrowser, type Page } from "../../helpers/browser.ts";
import { fixtureServer, type ProxyProcess, startProxy } from "../../helpers/proxy.ts";
import { fakeGitHub, LOGIN_ENV, loginConfig } from "../../helpers/oauth.ts";
import {
  authorizeUrl,
  closedPort,
  mcpInitialize,
  pkce,
  redeem,
  register,
} from "../../helpers/oauth-flows.ts";
import { takeScreenshots } from "../../tools/screenshots.ts";

// One Chromium for both tests: the flow's steps, then the docs' screenshots.
Deno.test("browser (one Chromium)", async (t) => {
  const browser = await launchBrowser();
  try {
    await t.step(
      "browser: consent renders in Chromium; Allow completes the flow with a code; Deny returns access_denied; framing the consent page is refused",
      (t) => flow(t, browser),
    );
    await t.step(
      "browser: the docs' screenshot script renders the consent and unknown-client pages",
      () => screenshots(browser),
    );
  } finally {
    await browser.close();
  }
});

async function flow(t: Deno.TestContext, browser: Browser): Promise<void> {
  const gh = await fakeGitHub();
  let proxy: ProxyProcess | undefined;
  try {
    proxy = await startProxy({ mcpServers: { fx: fixtureServer() }, ...loginConfig(gh) }, {
      env: LOGIN_ENV,
    });
    const origin = proxy.origin;
    const redirectUri = `http://127.0.0.1:${closedPort()}/callback`;
    const client = await register(origin, {
      client_name: "Browser Test Client",
      redirect_uris: [redirectUri],
    });
    const start = async (page: Page, state: string) => {
      const { verifier, challenge } = await pkce();
      const url = authorizeUrl(origin, {
        clientId: client.client_id,
        challenge,
        state,
        redirectUri,
        resource: proxy!.url("fx"),
      });
      const nav = await page.goto(url);
      assert.equal(nav.status, 200);
      return { verifier, url };
    };
    const arrival = async (page: Page) =>
      new URL((await page.waitForRequest((u) => u.startsWith(redirectUri))).url);

    await t.step("the consent page renders; Allow completes the flow with a code", async () => {
      const page = await browser.newPage({ isolated: true });
      const { verifier } = await start(page, "state-allow");
      const shown = await page.evaluate<string>("document.body.innerText");
      for (
        const expected of [
          `Allow access to the MCP servers at ${new URL(origin).host}?`,
          "Browser Test Client",
          "the name this application gives itself",
          `http://127.0.0.1:${new URL(redirectUri).port}`,
          "fx",
          "localhost",
        ]
      ) assert.ok(shown.includes(expected), `"${expected}" visible in: ${shown}`);
      const buttons = await page.evaluate<[string, string, boolean][]>(
        `[...document.querySelectorAll("form button")].map((b) => {
          const r = b.getBoundingClientRect();
          return [b.innerText.trim(), b.value, r.width > 0 && r.height > 0];
        })`,
      );
      assert.deepEqual(buttons, [["Allow", "allow", true], ["Deny", "deny", true]]);
      // Allow is the visually primary button: filled with a colour, white text, bolder.
      const looks = await page.evaluate<Record<string, string>[]>(
        `[...document.querySelectorAll("form button")].map((b) => {
          const s = getComputedStyle(b);
          return { bg: s.backgroundColor, fg: s.color, weight: s.fontWeight };
        })`,
      );
      assert.deepEqual(looks[0], {
        bg: "rgb(31, 111, 235)",
        fg: "rgb(255, 255, 255)",
        weight: "600",
      });
      assert.equal(looks[1].bg, "rgb(255, 255, 255)");
      assert.ok(Number(looks[1].weight) < 600, JSON.stringify(looks));

      const nav = await page.clickAndWaitForNavigation('button[value="allow"]', {
        allowNetError: true,
      });
      assert.equal(nav.errorText, "net::ERR_CONNECTION_REFUSED");
      const back = await arrival(page);
      assert.equal(back.searchParams.get("state"), "state-allow");
      assert.equal(back.searchParams.get("iss"), origin);
      const code = back.searchParams.get("code");
      assert.match(code ?? "", /^mop_code_/);
      // The browser went through GitHub and the proxy's callback on its way.
      const urls = page.visitedUrls();
      assert.ok(urls.some((u) => u.startsWith(`${gh.webUrl}/login/oauth/authorize?`)));
      assert.ok(urls.some((u) => u.startsWith(`${origin}/auth/callback?`)));
      const res = await redeem(
        origin,
        { clientId: client.client_id },
        code!,
        verifier,
        redirectUri,
      );
      assert.equal(res.status, 200);
      const tokens = await res.json();
      assert.equal((await mcpInitialize(proxy!.url("fx"), tokens.access_token)).status, 200);
      await page.close();
    });

    await t.step("Deny returns access_denied and never reaches GitHub", async () => {
      const page = await browser.newPage({ isolated: true });
      const before = gh.authorizeRequests.length;
      await start(page, "state-deny");
      await page.clickAndWaitForNavigation('button[value="deny"]', { allowNetError: true });
      const back = await arrival(page);
      assert.equal(back.searchParams.get("error"), "access_denied");
      assert.equal(back.searchParams.get("state"), "state-deny");
      assert.equal(back.searchParams.get("iss"), origin);
      assert.equal(back.searchParams.get("code"), null);
      assert.equal(gh.authorizeRequests.length, before);
      await page.close();
    });

    await t.step("a cross-site page framing the consent URL is refused", async () => {
      const page = await browser.newPage({ isolated: true });
      const { challenge } = await pkce();
      const url = authorizeUrl(origin, {
        clientId: client.client_id,
        challenge,
        state: "state-frame",
        redirectUri,
      });
      const framing = await page.checkFraming(url);
      assert.equal(framing.blocked, true, JSON.stringify(framing));
      assert.equal(framing.loaded, false);
      assert.match(framing.reason ?? "", /frame-ancestors 'none'|X-Frame-Options/);
      await page.close();
      // Either header alone blocks Chromium; both are required (older browsers know only XFO).
      const res = await fetch(url);
      await res.body?.cancel();
      assert.equal(res.headers.get("x-frame-options"), "DENY");
      assert.match(res.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    });
  } catch (error) {
    console.log(proxy?.logs());
    throw error;
  } finally {
    await proxy?.stop();
    await gh.close();
  }
}

async function screenshots(browser: Browser): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mop-screenshots-" });
  try {
    const written = await takeScreenshots(dir, { browser });
    assert.deepEqual(written.map((p) => p.slice(dir.length + 1)), [
      "consent.png",
      "unknown-client.png",
    ]);
    for (const path of written) {
      const png = await Deno.readFile(path);
      // PNG signature, then the IHDR chunk with the width and height (big-endian).
      assert.deepEqual([...png.slice(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], path);
      const view = new DataView(png.buffer, png.byteOffset);
      assert.equal(view.getUint32(16), 760, path);
      assert.ok(view.getUint32(20) > 200, `${path}: height ${view.getUint32(20)}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
