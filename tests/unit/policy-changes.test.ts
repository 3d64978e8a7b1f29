/** Which kinds a reload changed: the rule that decides which list_changed notifications go out. */
import assert from "node:assert/strict";
import { changedKinds } from "../../lib/policy/changes.ts";

Deno.test("changedKinds: the kinds whose rules differ, by meaning", () => {
  assert.deepEqual(changedKinds(undefined, undefined), []);
  assert.deepEqual(changedKinds(null, {}), []);
  assert.deepEqual(changedKinds({ tools: {} }, undefined), [], "empty rules are no rules");
  assert.deepEqual(changedKinds({ tools: { deny: [] } }, {}), []);
  assert.deepEqual(
    changedKinds({ tools: { deny: ["a", "b"] } }, { tools: { deny: ["b", "a", "a"] } }),
    [],
    "order and repeats do not count",
  );
  assert.deepEqual(changedKinds({ tools: { deny: ["a"] } }, { tools: { deny: ["b"] } }), [
    "tools",
  ]);
  assert.deepEqual(changedKinds({}, { prompts: { allow: [] } }), ["prompts"], "allow [] hides all");
  assert.deepEqual(changedKinds({ readOnly: true }, {}), ["tools"]);
  assert.deepEqual(changedKinds({ readOnly: false }, {}), []);
  assert.deepEqual(
    changedKinds(
      { tools: { deny: ["x"] }, resources: { allow: ["file:///*"] } },
      { tools: { deny: ["x"] }, prompts: { deny: ["p"] }, resources: { allow: ["file:///a"] } },
    ),
    ["prompts", "resources"],
  );
});
