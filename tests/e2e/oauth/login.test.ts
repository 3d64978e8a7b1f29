/** The whole login with the SDK client: 401 → discovery → DCR → consent → GitHub → token → tool call. */
import assert from "node:assert/strict";
import { fixtureServer, startProxy } from "../../helpers/proxy.ts";
import { text } from "../../helpers/client.ts";
import {
  ALICE,
  connectWithLogin,
  fakeGitHub,
  LOGIN_ENV,
  loginConfig,
  TestProvider,
} from "../../helpers/oauth.ts";

Deno.test("SDK client: discovery, registration, consent, GitHub, token, tool call", async () => {
  const gh = await fakeGitHub();
  const proxy = await startProxy({ mcpServers: { fx: fixtureServer() }, ...loginConfig(gh) }, {
    env: LOGIN_ENV,
  });
  try {
    const provider = new TestProvider();
    const { client } = await connectWithLogin(proxy.url("fx"), provider).catch((e) => {
      console.log(
        proxy.logs(),
        provider.browser.pages.map((p) => p.url + " " + p.status + " " + p.html.slice(0, 300)),
      );
      throw e;
    });
    assert.equal(
      text(await client.callTool({ name: "echo", arguments: { text: "signed in" } })),
      "signed in",
    );
    const tokens = provider.savedTokens!;
    assert.match(tokens.access_token, /^mop_at_/);
    assert.match(tokens.refresh_token!, /^mop_rt_/);
    assert.equal(tokens.token_type, "Bearer");
    const consent = provider.browser.pages.find((p) => p.html.includes("Allow access"));
    assert.ok(consent, "the consent page was shown");
    await client.close();
    console.log(proxy.logs());
  } finally {
    await proxy.stop();
    await gh.close();
  }
  assert.equal(ALICE.id, 583231);
});
