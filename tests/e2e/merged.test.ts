/**
 * The merged endpoint `/mcp`: three fixture servers behind one session (colliding tool, prompt
 * and resource names), one of which crashes and comes back mid-test; progress, logging,
 * cancellation and server-to-client requests routed to the right child; audience separation
 * between `/mcp` and `/mcp/<name>`; the SDK client with login through the fake GitHub.
 */
import assert from "node:assert/strict";
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import {
  CONFORMANCE_FIXTURE,
  crashingServer,
  fixtureServer,
  startProxy,
} from "../helpers/proxy.ts";
import { connect, text } from "../helpers/client.ts";
import { eventually } from "../helpers/procs.ts";
import {
  ALICE,
  BOB,
  connectWithLogin,
  fakeGitHub,
  LOGIN_ENV,
  loginConfig,
  TestProvider,
} from "../helpers/oauth.ts";
import { mcpInitialize, signInForTokens } from "../helpers/oauth-flows.ts";

const FIXTURE_TOOLS = 17;

/** Requests in flight at a server's children, from the owner's /healthz. */
async function inFlight(admin: string, server: string): Promise<number> {
  const health = await (await fetch(`${admin}/healthz`)).json();
  const children = health.servers[server].children;
  return children.reduce((n: number, c: { inFlight: number }) => n + c.inFlight, 0);
}

Deno.test("merged: three servers behind /mcp, one crashing and coming back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-merged-" });
  const marker = `${dir}/crash`;
  const proxy = await startProxy({
    mcpServers: {
      a: fixtureServer({ mode: "per-user" }, ["--name=a"]),
      b: crashingServer(marker, { mode: "shared", restartDelay: "200ms" }),
      c: fixtureServer({ mode: "per-session" }, ["--name=c"]),
    },
    merged: { enabled: true },
  }, { dir });
  try {
    const s = await connect(`${proxy.origin}/mcp`, { answer: true, samplingText: "merged" });
    const info = s.client.getInstructions() ?? "";
    assert.match(info, /^## a\nFixture server/);
    assert.match(info, /## b\n/);
    assert.match(info, /## c\n/);
    assert.equal(s.client.getServerCapabilities()?.tools?.listChanged, true);

    const names = (await s.client.listTools()).tools.map((t) => t.name);
    assert.equal(names.length, 3 * FIXTURE_TOOLS);
    for (const n of ["a__echo", "b__echo", "c__echo", "b__crash"]) assert.ok(names.includes(n), n);
    const pids = await Promise.all(
      ["a", "b", "c"].map(async (n) =>
        text(await s.client.callTool({ name: `${n}__pid`, arguments: {} }))
      ),
    );
    assert.equal(new Set(pids).size, 3, "each tool runs on its own server's child");
    assert.equal(
      text(await s.client.callTool({ name: "c__echo", arguments: { text: "hi" } })),
      "hi",
    );
    await assert.rejects(
      s.client.callTool({ name: "d__echo", arguments: { text: "x" } }),
      /Unknown tool: d__echo/,
    );

    // Colliding resources are prefixed; each read reaches its own server.
    const uris = (await s.client.listResources()).resources.map((r) => r.uri).sort();
    assert.deepEqual(uris, ["a", "b", "c"].map((n) => `mcp-merged://${n}/fixture://greeting`));
    const read = await s.client.readResource({ uri: "mcp-merged://c/fixture://greeting" });
    assert.equal(read.contents[0].uri, "mcp-merged://c/fixture://greeting");
    assert.equal((read.contents[0] as { text: string }).text, "hello from the fixture");
    await assert.rejects(
      s.client.readResource({ uri: "fixture://greeting" }),
      /several servers have fixture:\/\/greeting/,
    );
    const prompts = (await s.client.listPrompts()).prompts.map((p) => p.name).sort();
    assert.deepEqual(prompts, ["a__greet", "b__greet", "c__greet"]);
    const prompt = await s.client.getPrompt({ name: "b__greet", arguments: { name: "Ada" } });
    assert.match(JSON.stringify(prompt.messages), /Please greet Ada/);

    // Progress, logging and server-to-client requests find their way to and from each child.
    const seen: number[] = [];
    const done = await s.client.callTool(
      { name: "a__progress", arguments: { steps: 3 } },
      undefined,
      { onprogress: (p) => seen.push(p.progress) },
    );
    assert.equal(text(done), "done 3");
    assert.deepEqual(seen, [1, 2, 3]);
    const [sampled, elicited] = await Promise.all([
      s.client.callTool({ name: "b__sample", arguments: { prompt: "q" } }),
      s.client.callTool({ name: "c__elicit", arguments: { message: "?" } }),
    ]);
    assert.equal(text(sampled), "sampled: merged q");
    assert.match(text(elicited), /^elicited: accept/);
    await s.client.setLoggingLevel("info");
    await s.client.callTool({ name: "c__log", arguments: { message: "from c" } });
    await eventually(() => s.logs.includes("from c"), 5000, "the log message");

    // A client cancellation reaches the child running the call.
    const abort = new AbortController();
    const slow = s.client.callTool({ name: "a__slow", arguments: { ms: 60_000 } }, undefined, {
      signal: abort.signal,
    });
    while (await inFlight(proxy.admin, "a") < 1) await new Promise((r) => setTimeout(r, 50));
    abort.abort();
    await assert.rejects(slow);
    await proxy.waitForLog(/fixture: cancelled/, 10_000);

    // A child's list change reaches the merged session.
    const before = s.listChanged;
    await s.client.callTool({ name: "a__toggle", arguments: {} });
    await eventually(() => s.listChanged > before, 5000, "list_changed after toggle");
    assert.ok((await s.client.listTools()).tools.some((t) => t.name === "a__extra"));

    // b crashes and cannot start again while the marker exists: its items go, the rest works.
    let prompted = 0;
    let resourced = 0;
    s.client.setNotificationHandler(PromptListChangedNotificationSchema, () => void prompted++);
    s.client.setNotificationHandler(ResourceListChangedNotificationSchema, () => void resourced++);
    await Deno.writeTextFile(marker, "");
    const beforeCrash = s.listChanged;
    await assert.rejects(s.client.callTool({ name: "b__crash", arguments: {} }));
    await eventually(() => s.listChanged > beforeCrash, 10_000, "list_changed after the crash");
    await eventually(() => prompted > 0 && resourced > 0, 5000, "prompt and resource changes");
    const without = (await s.client.listTools()).tools.map((t) => t.name);
    assert.ok(!without.some((n) => n.startsWith("b__")), "b's tools are withdrawn");
    assert.equal(without.length, 2 * FIXTURE_TOOLS + 1);
    const left = (await s.client.listResources()).resources.map((r) => r.uri).sort();
    assert.deepEqual(left, ["a", "c"].map((n) => `mcp-merged://${n}/fixture://greeting`));
    await assert.rejects(
      s.client.callTool({ name: "b__echo", arguments: { text: "x" } }),
      /Unknown tool: b__echo/,
    );
    assert.equal(
      text(await s.client.callTool({ name: "a__echo", arguments: { text: "still" } })),
      "still",
    );

    // It comes back: its items return with a list change.
    const beforeBack = s.listChanged;
    await Deno.remove(marker);
    await eventually(() => s.listChanged > beforeBack, 60_000, "list_changed after the restart");
    const back = (await s.client.listTools()).tools.map((t) => t.name);
    assert.equal(back.length, 3 * FIXTURE_TOOLS + 1);
    assert.equal(
      text(await s.client.callTool({ name: "b__echo", arguments: { text: "back" } })),
      "back",
    );
    await s.terminate();
    await s.close();
  } finally {
    await proxy.stop();
  }
});

Deno.test("merged: off unless enabled; /mcp/<name> is unchanged beside it", async () => {
  const proxy = await startProxy({ mcpServers: { a: fixtureServer() } });
  try {
    const res = await fetch(`${proxy.origin}/mcp`, { method: "POST", body: "{}" });
    assert.equal(res.status, 404);
    await res.body?.cancel();
  } finally {
    await proxy.stop();
  }
});

Deno.test("merged: its own audience and metadata; the SDK client logs in and calls", async () => {
  const gh = await fakeGitHub();
  const proxy = await startProxy({
    ...loginConfig(gh, { users: [ALICE.id, BOB.id] }),
    mcpServers: {
      files: fixtureServer({ tools: { deny: ["crash", "env"] } }),
      notes: fixtureServer({ allow: { users: [ALICE.login] } }),
    },
    merged: { enabled: true, separator: "-" },
  }, { env: LOGIN_ENV });
  const merged = `${proxy.origin}/mcp`;
  const files = `${proxy.origin}/mcp/files`;
  try {
    const prm = await (await fetch(`${proxy.origin}/.well-known/oauth-protected-resource/mcp`))
      .json();
    assert.equal(prm.resource, merged);
    const bare = await mcpInitialize(merged, "mop_at_nothing");
    assert.equal(bare.status, 401);
    assert.match(
      bare.wwwAuthenticate ?? "",
      /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp"/,
    );

    const forFiles = await signInForTokens(proxy, { resource: files });
    const forMerged = await signInForTokens(proxy, { resource: merged });
    assert.equal((await mcpInitialize(files, forFiles.tokens.access_token)).status, 200);
    assert.equal((await mcpInitialize(merged, forMerged.tokens.access_token)).status, 200);
    const crossed = await mcpInitialize(merged, forFiles.tokens.access_token);
    assert.equal(crossed.status, 401);
    assert.match(crossed.body, /issued for another resource/);
    const reverse = await mcpInitialize(files, forMerged.tokens.access_token);
    assert.equal(reverse.status, 401);
    assert.match(reverse.body, /issued for another resource/);

    const provider = new TestProvider();
    const { client } = await connectWithLogin(merged, provider);
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes("files-echo") && names.includes("notes-echo"));
    assert.equal(
      text(await client.callTool({ name: "notes-echo", arguments: { text: "via sdk" } })),
      "via sdk",
    );
    // The server's filters apply through the merged endpoint: hidden as if unknown.
    assert.ok(!names.includes("files-crash") && !names.includes("files-env"));
    assert.ok(names.includes("notes-crash"));
    await assert.rejects(
      client.callTool({ name: "files-env", arguments: {} }),
      /Unknown tool: files-env/,
    );
    await client.close();

    // Bob may use files but not notes: his merged endpoint has only files.
    gh.setCurrentUser(BOB.id);
    const bob = (await signInForTokens(proxy, { resource: merged })).tokens.access_token;
    const bobs = await connect(merged, { headers: { authorization: `Bearer ${bob}` } });
    const bobNames = (await bobs.client.listTools()).tools.map((t) => t.name);
    assert.ok(bobNames.includes("files-echo"));
    assert.ok(!bobNames.some((n) => n.startsWith("notes-")), "notes is not Bob's");
    await assert.rejects(
      bobs.client.callTool({ name: "notes-echo", arguments: { text: "x" } }),
      /Unknown tool: notes-echo/,
    );
    assert.doesNotMatch(bobs.client.getInstructions() ?? "", /## notes/);
    await bobs.close();
  } finally {
    await proxy.stop();
    await gh.close();
  }
});

Deno.test("merged: 2026-07-28 clients list, call and answer input requests through /mcp", async () => {
  const proxy = await startProxy({
    mcpServers: {
      a: fixtureServer({ mode: "per-user" }, ["--name=a"]),
      b: fixtureServer({ mode: "per-session" }, ["--name=b"]),
    },
    merged: { enabled: true },
  });
  const client = new ModernClient({ name: "sdk-v2", version: "2.4.0" }, {
    capabilities: { elicitation: {} },
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  client.setRequestHandler("elicitation/create", () => ({
    action: "accept" as const,
    content: { answer: "from the client" },
  }));
  try {
    await client.connect(new ModernTransport(new URL(`${proxy.origin}/mcp`)));
    assert.equal(client.getNegotiatedProtocolVersion(), "2026-07-28");
    assert.match(client.getInstructions() ?? "", /^## a\n[^]*## b\n/);
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.equal(names.length, 2 * FIXTURE_TOOLS);
    assert.ok(names.includes("a__echo") && names.includes("b__echo"));
    const pids = await Promise.all(
      ["a", "b"].map(async (n) =>
        text(await client.callTool({ name: `${n}__pid`, arguments: {} }))
      ),
    );
    assert.notEqual(pids[0], pids[1]);
    const seen: number[] = [];
    const done = await client.callTool({ name: "b__progress", arguments: { steps: 2 } }, {
      onprogress: (p) => seen.push(p.progress),
    });
    assert.equal(text(done), "done 2");
    assert.deepEqual(seen, [1, 2]);
    // A multi round-trip request: the retry, named as the client knows it, reaches the same child.
    const elicited = await client.callTool({ name: "b__elicit", arguments: { message: "?" } });
    assert.equal(text(elicited), "elicited: accept from the client");
    const uris = (await client.listResources()).resources.map((r) => r.uri).sort();
    assert.deepEqual(uris, [
      "mcp-merged://a/fixture://greeting",
      "mcp-merged://b/fixture://greeting",
    ]);
    // The answer names the URI as the client was given it, as a 2025 session's does.
    const read = await client.readResource({ uri: "mcp-merged://a/fixture://greeting" });
    assert.equal(read.contents[0].uri, "mcp-merged://a/fixture://greeting");
    assert.equal((read.contents[0] as { text: string }).text, "hello from the fixture");
    await assert.rejects(
      client.callTool({ name: "zz__echo", arguments: { text: "x" } }),
      /Unknown tool: zz__echo/,
    );
  } finally {
    await client.close();
    await proxy.stop();
  }
});

Deno.test("merged: an update keeps the mcp-merged:// name subscribed to while the other server is down", async () => {
  const watched = "test://watched-resource";
  const conformance = (extra: Record<string, unknown>) => ({
    command: "deno",
    args: ["run", "--no-prompt", CONFORMANCE_FIXTURE],
    mode: "shared",
    ...extra,
  });
  // a's child, once killed, stays down for the rest of the test.
  const proxy = await startProxy({
    mcpServers: { a: conformance({ restartDelay: "60s" }), b: conformance({}) },
    merged: { enabled: true },
  });
  try {
    const s = await connect(`${proxy.origin}/mcp`);
    const updates: string[] = [];
    s.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    const uris = (await s.client.listResources()).resources.map((r) => r.uri);
    const inB = `mcp-merged://b/${watched}`;
    assert.ok(uris.includes(inB) && uris.includes(`mcp-merged://a/${watched}`));
    await s.client.subscribeResource({ uri: inB });
    const touch = async () =>
      text(
        await s.client.callTool({ name: "b__test_touch_resource", arguments: { uri: watched } }),
      );
    assert.match(await touch(), /touched/);
    await eventually(() => updates.length === 1, 10_000, "b's first update");

    // a's child crashes: the URI is b's alone for now, yet b's update keeps the subscribed name.
    const pid = Number(/child started child="a#\d+" pid=(\d+)/.exec(proxy.logs())![1]);
    const before = s.listChanged;
    Deno.kill(pid, "SIGKILL");
    await eventually(() => s.listChanged > before, 10_000, "list_changed after a's crash");
    assert.match(await touch(), /touched/);
    await eventually(() => updates.length === 2, 10_000, "b's update while a is down");
    assert.deepEqual(updates, [inB, inB]);
    await s.close();
  } finally {
    await proxy.stop();
  }
});
