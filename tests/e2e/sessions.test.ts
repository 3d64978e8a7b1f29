/**
 * Session room is shared fairly between people: one user opening many streams only ends their
 * own sessions, a legacy session registered twice (at GET and at initialize) ends nothing, and a
 * newcomer is refused with 503 + Retry-After when nobody holds more than their share.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import {
  ALICE,
  BOB,
  fakeGitHub,
  HeadlessBrowser,
  LOGIN_ENV,
  loginConfig,
  MALLORY,
} from "../helpers/oauth.ts";
import {
  expectAccepted,
  inSession,
  probe,
  readAnswer,
  TEST_RATES,
  TokenClient,
} from "../helpers/oauth-tokens.ts";
import { SseReader } from "../helpers/sse.ts";
import { initializeRequest } from "../helpers/client.ts";

/** Opens `GET /sse/fx` as the token's owner; returns the stream and its message endpoint. */
async function openLegacy(proxy: ProxyProcess, token: string) {
  const res = await fetch(`${proxy.origin}/sse/fx`, {
    headers: { accept: "text/event-stream", authorization: `Bearer ${token}` },
  });
  if (res.status !== 200) assert.fail(`GET /sse/fx: ${res.status} ${await res.text()}`);
  const stream = new SseReader(res.body!);
  const endpoint = await stream.nextNamed("endpoint");
  assert.ok(endpoint, "the stream names its message endpoint");
  return { stream, endpoint: `${proxy.origin}${endpoint.data}` };
}

Deno.test("sessions: per-user share, no eviction on re-add, refusal at capacity", async (t) => {
  const gh = await fakeGitHub();
  let proxy: ProxyProcess | undefined;
  try {
    proxy = await startProxy({
      mcpServers: { fx: fixtureServer() },
      ...loginConfig(gh, { users: [ALICE.id, BOB.id, MALLORY.id] }),
      limits: { ...TEST_RATES, sessionsTotal: 2, sessionsPerUser: 1 },
    }, { env: LOGIN_ENV });
    const url = proxy.url("fx");
    const tc = new TokenClient(proxy.origin);
    const client = await tc.register("none");
    const tokens: Record<string, string> = {};
    for (const user of [ALICE, BOB, MALLORY]) {
      gh.setCurrentUser(user.id);
      tokens[user.login] = (await tc.login(client, { browser: new HeadlessBrowser() }))
        .access_token;
    }
    const aliceSession = await expectAccepted(url, tokens.alice);
    const b1 = await openLegacy(proxy, tokens.bob);

    let b2: Awaited<ReturnType<typeof openLegacy>> | undefined;
    await t.step(
      "a user at their share loses their own oldest session, not another's",
      async () => {
        b2 = await openLegacy(proxy!, tokens.bob);
        const answer = await readAnswer(await inSession(url, tokens.alice, aliceSession));
        assert.equal(answer.status, 200, answer.text);
        assert.equal(await b1.stream.ended(), true, "bob's first stream was ended");
      },
    );

    await t.step(
      "initialize on a legacy session (its second registration) ends nothing",
      async () => {
        const init = await fetch(b2!.endpoint, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${tokens.bob}` },
          body: JSON.stringify(initializeRequest("2024-11-05", "b", 1)),
        });
        assert.equal(init.status, 202);
        await init.body?.cancel();
        const result = await b2!.stream.nextNamed("message");
        assert.ok(result, "the initialize result arrives on bob's stream");
        assert.equal(JSON.parse(result.data).result.serverInfo.name, "fixture");
        const again = await readAnswer(await inSession(url, tokens.alice, aliceSession));
        assert.equal(again.status, 200, again.text);
        await b2!.stream.cancel();
      },
    );

    await t.step("a newcomer is refused with 503 when nobody holds more than a share", async () => {
      // alice and bob hold one session each: mallory may not end either.
      const bob = await openLegacy(proxy!, tokens.bob);
      for (
        const res of [
          await fetch(`${proxy!.origin}/sse/fx`, {
            headers: { accept: "text/event-stream", authorization: `Bearer ${tokens.mallory}` },
          }),
          await fetch(url, {
            method: "POST",
            headers: {
              accept: "application/json, text/event-stream",
              "content-type": "application/json",
              authorization: `Bearer ${tokens.mallory}`,
            },
            body: JSON.stringify(initializeRequest("2025-06-18", "m", "m-1")),
          }),
        ]
      ) {
        if (res.status !== 503) {
          await res.body?.cancel();
          assert.fail(`expected 503, got ${res.status}`);
        }
        const answer = await readAnswer(res);
        assert.equal(answer.status, 503, answer.text);
        assert.equal(answer.headers.get("retry-after"), "30");
        assert.match(answer.body.error.message, /too many sessions/);
      }
      assert.equal(
        (await readAnswer(await inSession(url, tokens.alice, aliceSession))).status,
        200,
      );
      await bob.stream.cancel();
    });
    assert.equal((await probe(url)).status, 401);
  } finally {
    await proxy?.stop();
    await gh.close();
  }
});
