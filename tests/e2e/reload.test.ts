/**
 * SIGHUP reloads never overlap: when a reload is slow (GitHub resolves allow-listed logins),
 * a later signal's reload runs after it, so the file as it was at the last signal wins.
 */
import assert from "node:assert/strict";
import { fixtureServer, startProxy } from "../helpers/proxy.ts";
import { ALICE, BOB, fakeGitHub, LOGIN_ENV, loginConfig } from "../helpers/oauth.ts";
import {
  countLogLines,
  reloadConfig,
  signIn,
  waitForNewLog,
  waitUntil,
} from "../helpers/oauth-flows.ts";

Deno.test("SIGHUP: of two overlapping reloads the last signal wins, even when the first one's GitHub look-up is slow", async () => {
  const gh = await fakeGitHub();
  try {
    const proxy = await startProxy(
      { mcpServers: { fx: fixtureServer() }, ...loginConfig(gh, { users: [BOB.id] }) },
      // The signals themselves: a SIGHUP during a reload.
      { env: LOGIN_ENV, process: true },
    );
    try {
      gh.setCurrentUser(ALICE.id);
      assert.equal((await signIn(proxy)).page?.status, 403, "alice is not on the first list");
      const reloaded = countLogLines(proxy, /allow-list reloaded/);
      // Reload 1 resolves the login "bob" at GitHub, which answers slowly.
      gh.injectDelay("/api/v3/users/bob", 1500, 1);
      await reloadConfig(proxy, (c) => c.allow = { users: ["bob"] });
      await waitUntil(
        () => gh.apiRequests.some((r) => r.path === "/api/v3/users/bob"),
        10_000,
        "the slow look-up",
      );
      // Reload 2 (fast: an id needs no look-up) is signalled while reload 1 waits for GitHub.
      await reloadConfig(proxy, (c) => c.allow = { users: [ALICE.id] });
      await waitForNewLog(proxy, /allow-list reloaded/, reloaded + 1);
      const flow = await signIn(proxy);
      assert.ok(flow.code, `alice is on the last list: ${flow.page?.status} ${flow.error}`);
    } catch (error) {
      console.log(proxy.logs());
      throw error;
    } finally {
      await proxy.stop();
    }
  } finally {
    await gh.close();
  }
});
