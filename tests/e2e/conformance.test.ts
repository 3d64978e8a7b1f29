/**
 * The official MCP conformance suite's server scenarios, run end to end against the proxy
 * (`/mcp/<name>`, Streamable HTTP) in front of tests/fixtures/conformance-server.ts.
 *
 * Scenarios that fail because of the proxy are listed, with the reason, in
 * tests/fixtures/conformance-baseline.yml; a listed scenario that passes fails this test too,
 * so the baseline cannot go stale.
 */
import assert from "node:assert/strict";
import { CONFORMANCE_FIXTURE, ROOT, startProxy } from "../helpers/proxy.ts";
import {
  assertRun,
  readExpected,
  runConformance,
  serverPerMode,
  startEach,
} from "../helpers/conformance.ts";

const CONFORMANCE = "npm:@modelcontextprotocol/conformance@0.1.16";
const FIXTURE = CONFORMANCE_FIXTURE;
const BASELINE = `${ROOT}/tests/fixtures/conformance-baseline.yml`;

/** Every server scenario of the pinned package (`conformance list`), pending ones included. */
const SCENARIOS = [
  "server-initialize",
  "logging-set-level",
  "ping",
  "completion-complete",
  "tools-list",
  "tools-call-simple-text",
  "tools-call-image",
  "tools-call-audio",
  "tools-call-embedded-resource",
  "tools-call-mixed-content",
  "tools-call-with-logging",
  "tools-call-error",
  "tools-call-with-progress",
  "tools-call-sampling",
  "tools-call-elicitation",
  "json-schema-2020-12",
  "elicitation-sep1034-defaults",
  "server-sse-polling",
  "server-sse-multiple-streams",
  "elicitation-sep1330-enums",
  "resources-list",
  "resources-read-text",
  "resources-read-binary",
  "resources-templates-read",
  "resources-subscribe",
  "resources-unsubscribe",
  "prompts-list",
  "prompts-get-simple",
  "prompts-get-with-args",
  "prompts-get-embedded-resource",
  "prompts-get-with-image",
  "dns-rebinding-protection",
];

// per-session passes too, but the CLI never ends its sessions (no DELETE), so each of its ~45
// sessions would keep a child running until the limits evict them; it is left out for speed.
// One proxy serves both modes as two servers (a run per server, side by side): sessions are per
// server.
const MODES = ["per-user", "shared"] as const;

Deno.test(`conformance: every server scenario of ${CONFORMANCE} passes`, async (t) => {
  const baseline = await readExpected(BASELINE);
  for (const name of baseline) {
    assert.ok(SCENARIOS.includes(name), `baseline names an unknown scenario: ${name}`);
  }
  const proxy = await startProxy({ mcpServers: serverPerMode(FIXTURE, MODES) });
  try {
    const args = ["--suite", "all"];
    if (baseline.length > 0) args.push("--expected-failures", BASELINE);
    const runs = startEach(MODES, (mode) => runConformance(CONFORMANCE, proxy.url(mode), args));
    for (const mode of MODES) {
      await t.step(mode, async () => {
        assertRun(await runs.get(mode)!, {
          scenarios: SCENARIOS,
          expected: baseline,
          expectedFile: BASELINE,
          proxyLog: () => proxy.logs(),
        });
      });
    }
  } finally {
    await proxy.stop();
  }
});
