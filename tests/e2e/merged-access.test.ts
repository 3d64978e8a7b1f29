/**
 * Per-server access on the merged endpoint `/mcp`, re-decided on every request: a SIGHUP that
 * narrows a server's `allow` takes the server out of a person's open 2025-era session (its items
 * leave the lists with list_changed, and naming them gets the answer an unknown name gets) and out
 * of their 2026-07-28 requests, while the other server keeps working; a SIGHUP that widens it
 * brings it back, also into a session that began without it.
 */
import assert from "node:assert/strict";
import { fixtureServer, type ProxyProcess, startProxy } from "../helpers/proxy.ts";
import { connect, type Connected, text } from "../helpers/client.ts";
import { eventually } from "../helpers/procs.ts";
import { ALICE, BOB, fakeGitHub, LOGIN_ENV, loginConfig } from "../helpers/oauth.ts";
import {
  countLogLines,
  reloadConfig,
  signInForTokens,
  waitForNewLog,
} from "../helpers/oauth-flows.ts";
import { type Answer, modernRequest, sdkRequest, shape } from "../helpers/rpc.ts";

type Rpc = (method: string, params?: Record<string, unknown>) => Promise<Answer>;

/** Gives server b to `user` alone, by SIGHUP, and waits until the reload is done. */
async function giveB(proxy: ProxyProcess, user: number): Promise<void> {
  const reloaded = countLogLines(proxy, /allow-list reloaded/);
  await reloadConfig(proxy, (c) => {
    (c.mcpServers as Record<string, Record<string, unknown>>).b.allow = { users: [user] };
  });
  await waitForNewLog(proxy, /allow-list reloaded/, reloaded);
}

const toolNames = async (rpc: Rpc) =>
  ((await rpc("tools/list")).result!.tools as { name: string }[]).map((t) => t.name);

/** b is gone for this person: unlisted, and each kind of request naming it answered as unknown. */
async function withoutB(rpc: Rpc): Promise<void> {
  const names = await toolNames(rpc);
  assert.ok(names.includes("a__echo"));
  assert.ok(!names.some((n) => n.startsWith("b__")), `b's tools are gone: ${names}`);
  const prompts = (await rpc("prompts/list")).result!.prompts as { name: string }[];
  assert.deepEqual(prompts.map((p) => p.name), ["a__greet"]);
  // a's resource alone: no collision left, so its URI is no longer prefixed.
  const resources = (await rpc("resources/list")).result!.resources as { uri: string }[];
  assert.deepEqual(resources.map((r) => r.uri), ["fixture://greeting"]);
  const same = async (
    method: string,
    hidden: string,
    unknown: string,
    params: (x: string) => Record<string, unknown>,
  ) =>
    assert.equal(
      shape(await rpc(method, params(hidden)), hidden),
      shape(await rpc(method, params(unknown)), unknown),
      `${method} ${hidden}`,
    );
  await same("tools/call", "b__echo", "zz__echo", (name) => ({ name, arguments: { text: "x" } }));
  await same(
    "prompts/get",
    "b__greet",
    "zz__greet",
    (name) => ({ name, arguments: { name: "x" } }),
  );
  await same("completion/complete", "b__greet", "zz__greet", (name) => ({
    ref: { type: "ref/prompt", name },
    argument: { name: "name", value: "a" },
  }));
  await same(
    "resources/read",
    "mcp-merged://b/fixture://greeting",
    "mcp-merged://zz/fixture://greeting",
    (uri) => ({ uri }),
  );
  const echo = await rpc("tools/call", { name: "a__echo", arguments: { text: "still" } });
  assert.equal(text(echo.result), "still", "the other server keeps working");
}

/** b is there for this person: listed and called on its own child. */
async function withB(rpc: Rpc): Promise<void> {
  assert.ok((await toolNames(rpc)).includes("b__echo"));
  const prompts = (await rpc("prompts/list")).result!.prompts as { name: string }[];
  assert.deepEqual(prompts.map((p) => p.name), ["a__greet", "b__greet"]);
  const echo = await rpc("tools/call", { name: "b__echo", arguments: { text: "via b" } });
  assert.equal(text(echo.result), "via b");
}

Deno.test("merged access: a SIGHUP narrowing a server's allow takes it out of open /mcp sessions and 2026 requests; widening brings it back", async () => {
  const gh = await fakeGitHub();
  const proxy = await startProxy({
    ...loginConfig(gh, { users: [ALICE.id, BOB.id] }),
    mcpServers: {
      a: fixtureServer({}, ["--name=a"]),
      b: fixtureServer({ allow: { users: [ALICE.id] } }, ["--name=b"]),
    },
    merged: { enabled: true },
  }, { env: LOGIN_ENV });
  const merged = `${proxy.origin}/mcp`;
  const sessions: Connected[] = [];
  try {
    const token = async (user: number) => {
      gh.setCurrentUser(user);
      return (await signInForTokens(proxy, { resource: merged })).tokens.access_token;
    };
    const lanes = async (user: number) => {
      const bearer = { authorization: `Bearer ${await token(user)}` };
      const s = await connect(merged, { headers: bearer });
      sessions.push(s);
      let id = 1;
      const modern: Rpc = (method, params) => modernRequest(merged, id++, method, params, bearer);
      return {
        s,
        session: (m: string, p?: Record<string, unknown>) => sdkRequest(s.client, m, p),
        modern,
      };
    };
    const alice = await lanes(ALICE.id);
    const bob = await lanes(BOB.id);
    await withB(alice.session);
    await withB(alice.modern);
    await withoutB(bob.session);
    await withoutB(bob.modern);

    /** Gives b to `user` alone and waits for both sessions' list_changed. */
    const flip = async (user: number) => {
      const changed = [alice.s.listChanged, bob.s.listChanged];
      await giveB(proxy, user);
      const both = () => alice.s.listChanged > changed[0] && bob.s.listChanged > changed[1];
      await eventually(both, 10_000, "list_changed in both sessions");
    };
    // b becomes Bob's alone: out of Alice's open session, into Bob's (which began without it).
    await flip(BOB.id);
    await withoutB(alice.session);
    await withoutB(alice.modern);
    await withB(bob.session);
    await withB(bob.modern);

    // And back.
    await flip(ALICE.id);
    await withB(alice.session);
    await withB(alice.modern);
    await withoutB(bob.session);
    await withoutB(bob.modern);
  } finally {
    for (const s of sessions) await s.close();
    await proxy.stop();
    await gh.close();
  }
});
