/**
 * A SIGHUP that changes a server's filters tells the open clients of that server that the lists
 * of the changed kinds changed (notifications/<kind>/list_changed): 2025 sessions on
 * /mcp/<name>, merged sessions on /mcp (once per kind however many servers changed), and 2026
 * listen streams of either; a kind whose rules stayed the same, or whose list change the client
 * was never promised, gets nothing. A later list change of another kind marks where an unwanted
 * notification would have arrived.
 */
import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import {
  CONFORMANCE_FIXTURE,
  fixtureServer,
  type ProxyProcess,
  startProxy,
} from "../helpers/proxy.ts";
import { connect, type Connected } from "../helpers/client.ts";
import { reloadConfig, waitForNewLog, waitUntil } from "../helpers/oauth-flows.ts";
import { type ListenStream, openListen, sdkRequest } from "../helpers/rpc.ts";

type Servers = Record<string, Record<string, unknown>>;

/** An SDK session that records the list changes it gets, in order ("tools", "prompts", ...). */
async function recording(url: string): Promise<{ c: Connected; changes: string[] }> {
  const c = await connect(url);
  const changes: string[] = [];
  c.client.setNotificationHandler(
    ToolListChangedNotificationSchema,
    () => void changes.push("tools"),
  );
  c.client.setNotificationHandler(
    PromptListChangedNotificationSchema,
    () => void changes.push("prompts"),
  );
  c.client.setNotificationHandler(
    ResourceListChangedNotificationSchema,
    () => void changes.push("resources"),
  );
  return { c, changes };
}

/** A 2026-07-28 listen stream for tool and prompt list changes, past its acknowledgement. */
async function listen(url: string): Promise<ListenStream> {
  const stream = await openListen(url, { toolsListChanged: true, promptsListChanged: true });
  assert.equal((await stream.next()).method, "notifications/subscriptions/acknowledged");
  return stream;
}

/** Edits the servers' filters by SIGHUP and waits until the proxy applied them. */
async function reload(proxy: ProxyProcess, edit: (servers: Servers) => void, done: number) {
  await reloadConfig(proxy, (c) => edit(c.mcpServers as Servers));
  await waitForNewLog(proxy, /filters reloaded/, done);
}

const toolNames = async (c: Connected) =>
  ((await sdkRequest(c.client, "tools/list")).result!.tools as { name: string }[]).map((t) =>
    t.name
  );

/** The children's modes: the sessions of every mode hear of a change. */
const MODES = [
  { conf: "shared", fx: "per-session" },
  { conf: "per-user", fx: "per-user" },
];

for (const modes of MODES) {
  Deno.test(`filters (${modes.conf}, ${modes.fx}): a SIGHUP that changes a server's filters sends list_changed for the changed kinds only`, async () => {
    const proxy = await startProxy({
      mcpServers: {
        // Declares listChanged for tools, prompts and resources.
        conf: {
          command: "deno",
          args: ["run", "--no-prompt", CONFORMANCE_FIXTURE],
          mode: modes.conf,
        },
        // Declares listChanged for tools only (per-session: the merged session's part has its own).
        fx: fixtureServer({ mode: modes.fx }),
      },
      merged: { enabled: true },
    });
    const open: Connected[] = [];
    const streams: ListenStream[] = [];
    try {
      const conf = await recording(proxy.url("conf"));
      const fx = await recording(proxy.url("fx"));
      const merged = await recording(`${proxy.origin}/mcp`);
      open.push(conf.c, fx.c, merged.c);
      assert.ok((await toolNames(conf.c)).includes("test_simple_text"));
      assert.ok((await toolNames(merged.c)).includes("fx__add"));
      const confListen = await listen(proxy.url("conf"));
      const mergedListen = await listen(`${proxy.origin}/mcp`);
      streams.push(confListen, mergedListen);

      // Both servers' tool filters change: each client hears of it once.
      await reload(proxy, (s) => {
        s.conf.tools = { deny: ["test_simple_text"] };
        s.fx.tools = { deny: ["add"] };
      }, 0);
      await waitUntil(
        () => conf.changes.length > 0 && fx.changes.length > 0,
        10_000,
        "list_changed",
      );
      assert.ok(!(await toolNames(conf.c)).includes("test_simple_text"), "hidden after the change");
      assert.ok(!(await toolNames(fx.c)).includes("add"));
      assert.equal((await confListen.next()).method, "notifications/tools/list_changed");
      assert.equal((await mergedListen.next()).method, "notifications/tools/list_changed");
      assert.ok(!(await toolNames(merged.c)).includes("fx__add"));

      // Only prompts change (the tool rules are the same, reordered): no tools/list_changed; fx
      // never declared prompts.listChanged, so its session hears nothing.
      await reload(proxy, (s) => {
        s.conf.tools = { deny: ["test_simple_text", "test_simple_text"] };
        s.conf.prompts = { deny: ["test_simple_prompt"] };
        s.fx.prompts = { deny: ["greet"] };
      }, 1);
      await waitUntil(
        () => conf.changes.length > 1 && merged.changes.length > 1,
        10_000,
        "prompts",
      );
      assert.deepEqual(conf.changes, ["tools", "prompts"]);
      assert.deepEqual(
        merged.changes,
        ["tools", "prompts"],
        "one tools/list_changed for two servers",
      );
      assert.equal((await confListen.next()).method, "notifications/prompts/list_changed");
      assert.equal((await mergedListen.next()).method, "notifications/prompts/list_changed");

      // fx's tools change back: its session's next list change is that one, nothing before it.
      // Its prompts change too: /mcp, which declares prompts.listChanged, hears of that.
      await reload(proxy, (s) => {
        delete s.fx.tools;
        s.fx.prompts = { deny: ["nothing"] };
      }, 2);
      await waitUntil(() => fx.changes.length > 1, 10_000, "fx tools");
      assert.deepEqual(fx.changes, ["tools", "tools"]);
      assert.ok((await toolNames(fx.c)).includes("add"), "shown again");
      await waitUntil(() => merged.changes.length > 3, 10_000, "merged tools and prompts");
      assert.deepEqual(merged.changes, ["tools", "prompts", "tools", "prompts"]);
      assert.equal((await mergedListen.next()).method, "notifications/tools/list_changed");
      assert.equal((await mergedListen.next()).method, "notifications/prompts/list_changed");
    } finally {
      for (const stream of streams) stream.close();
      await Promise.all(open.map((c) => c.close()));
      await proxy.stop();
    }
  });
}
