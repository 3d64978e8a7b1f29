/**
 * Screenshots of the consent page and the unknown-client page for the docs, taken from the real
 * pages: a proxy with a login config (against the fake GitHub, all on 127.0.0.1) renders them and
 * headless Chromium (/usr/bin/chromium, fresh profile) captures them.
 *
 *   deno task screenshots            # writes docs/images/consent.png and unknown-client.png
 *   deno task screenshots OUT_DIR    # somewhere else
 */
import { type Browser, launchBrowser } from "../helpers/browser.ts";
import { fixtureServer, ROOT, startProxy } from "../helpers/proxy.ts";
import { fakeGitHub, LOGIN_ENV, loginConfig } from "../helpers/oauth.ts";
import { authorizeUrl, pkce, register } from "../helpers/oauth-flows.ts";

/** The public URL the pages name (the proxy listens on 127.0.0.1, like behind a tunnel). */
const PUBLIC_URL = "https://pi.tail1234.ts.net";
const CHATGPT_REDIRECT = "https://chatgpt.com/connector_platform_oauth_redirect";
/** Wide enough for a laptop-sized page, narrow enough to read in the docs. */
const WIDTH = 760;

/**
 * Renders both pages and writes `consent.png` and `unknown-client.png` into `outDir`, in
 * `shared.browser` (left open) when given, else in a Chromium of its own.
 */
export async function takeScreenshots(
  outDir: string,
  shared: { browser?: Browser } = {},
): Promise<string[]> {
  await Deno.mkdir(outDir, { recursive: true });
  const gh = await fakeGitHub();
  const proxy = await startProxy({
    publicUrl: PUBLIC_URL,
    mcpServers: { files: fixtureServer(), notes: fixtureServer() },
    ...loginConfig(gh),
  }, { env: LOGIN_ENV }).catch(async (error) => {
    await gh.close();
    throw error;
  });
  const browser = shared.browser ?? await launchBrowser();
  try {
    const origin = proxy.origin;
    const client = await register(origin, {
      client_name: "ChatGPT",
      redirect_uris: [CHATGPT_REDIRECT],
    });
    const { challenge } = await pkce();
    const pages = {
      "consent.png": authorizeUrl(origin, {
        clientId: client.client_id,
        challenge,
        state: "screenshot",
        redirectUri: CHATGPT_REDIRECT,
      }),
      // A client id the proxy does not know (say, after `deno task clients revoke`).
      "unknown-client.png": authorizeUrl(origin, {
        clientId: "mop_client_removedByTheOwner0000",
        challenge,
        redirectUri: CHATGPT_REDIRECT,
      }),
    };
    const written: string[] = [];
    for (const [file, url] of Object.entries(pages)) {
      const page = await browser.newPage({ isolated: true });
      await page.goto(url);
      const path = `${outDir}/${file}`;
      await page.screenshot(path, { width: WIDTH });
      await page.close();
      written.push(path);
    }
    return written;
  } finally {
    if (!shared.browser) await browser.close();
    await proxy.stop();
    await gh.close();
  }
}

if (import.meta.main) {
  const outDir = Deno.args[0] ?? `${ROOT}/docs/images`;
  for (const path of await takeScreenshots(outDir)) console.log(path);
}
