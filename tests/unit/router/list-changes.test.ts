/** A reload's changed filters reach each session as list_changed where its capabilities promise it. */
import assert from "node:assert/strict";
import { announceFilterChange } from "../../../lib/router/list-changes.ts";
import type { InitializeResult } from "../../../lib/children/lifecycle.ts";
import type { Downstream } from "../../../lib/router/downstream.ts";
import type { PolicyKind } from "../../../lib/policy/policy.ts";
import { testSession } from "../../helpers/downstream.ts";

const CAPS = { tools: { listChanged: true }, prompts: {}, resources: { listChanged: false } };

function child(capabilities: Record<string, unknown> | null, sessions: Downstream[]) {
  const initResult = capabilities
    ? { protocolVersion: "2025-11-25", capabilities, serverInfo: { name: "x", version: "1" } }
    : null;
  return { initResult: initResult as InitializeResult | null, sessions: new Set(sessions) };
}

Deno.test("announceFilterChange: a kind's list_changed only where the child declared listChanged", () => {
  const session = testSession("a");
  announceFilterChange(child(CAPS, [session]), ["tools", "prompts", "resources"], null);
  assert.deepEqual(session.notes, [{ jsonrpc: "2.0", method: "notifications/tools/list_changed" }]);
  announceFilterChange(child(CAPS, [session]), [], null);
  announceFilterChange(child(CAPS, [session]), ["prompts"], null);
  assert.equal(session.notes.length, 1, "nothing for no kinds, or undeclared ones");
});

Deno.test("announceFilterChange: a stopped child's sessions go by what they were told", () => {
  const session = testSession("a");
  announceFilterChange(child(null, [session]), ["tools"], null);
  assert.deepEqual(session.notes, []);
  announceFilterChange(child(null, [session]), ["tools"], CAPS);
  assert.equal(session.notes.length, 1);
});

Deno.test("announceFilterChange: a downstream with its own capabilities is told the kinds", () => {
  const told: PolicyKind[][] = [];
  const part = { ...testSession("p"), filtersChanged: (kinds) => void told.push([...kinds]) } as
    & Downstream
    & { notes: unknown[] };
  announceFilterChange(child(CAPS, [part]), ["prompts", "resources"], null);
  assert.deepEqual(told, [["prompts", "resources"]]);
  assert.deepEqual(part.notes, []);
});
