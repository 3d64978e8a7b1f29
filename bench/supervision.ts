/**
 * Supervision under load: measures by hand what the e2e tests check by rule.
 *
 *   deno run -A bench/supervision.ts [failed-init|eviction|all]
 *
 * failed-init: 20 `initialize` calls to a per-session server whose command exits at once, then
 *   how many child slots /healthz still lists and how many spawns follow in the next 20 s.
 * eviction: 50 per-session sessions against limits.childrenTotal 8, then 3 calls per session
 *   at once; counts the outcomes (ok, 503 + Retry-After, "exited during start-up", other).
 */
import { fixtureServer, startProxy } from "../tests/helpers/proxy.ts";
import { postMcp } from "../tests/helpers/client.ts";

async function failedInit(): Promise<Record<string, number>> {
  const proxy = await startProxy({
    mcpServers: { gone: { command: "sh", args: ["-c", "exit 1"], mode: "per-session", warm: 0 } },
  }, { process: true });
  try {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => postMcp(proxy.url("gone")).then((r) => r.text())),
    );
    const failed = results.filter((r) => r.includes('"error"')).length;
    const spawnsBefore = count(proxy.logs(), /child started/);
    await new Promise((r) => setTimeout(r, 20_000));
    const health = await (await fetch(`${proxy.admin}/healthz`)).json();
    return {
      failedInitializes: failed,
      slotsLeft: health.servers.gone.children.length,
      spawnsIn20s: count(proxy.logs(), /child started/) - spawnsBefore,
    };
  } finally {
    await proxy.stop();
  }
}

async function eviction(): Promise<Record<string, number>> {
  const proxy = await startProxy({
    limits: { childrenTotal: 8, childrenPerUser: 8 },
    mcpServers: { fx: fixtureServer({ mode: "per-session", warm: 0 }) },
  }, { process: true });
  const outcomes: Record<string, number> = {};
  const add = (key: string) => outcomes[key] = (outcomes[key] ?? 0) + 1;
  try {
    const sessions: string[] = [];
    for (let i = 0; i < 50; i++) {
      const res = await postMcp(proxy.url("fx"));
      const text = await res.text();
      const id = res.headers.get("mcp-session-id");
      if (id) sessions.push(id);
      else add(`initialize ${res.status}: ${message(text)}`);
    }
    outcomes.sessions = sessions.length;
    const calls = sessions.flatMap((session) =>
      [1, 2, 3].map(async (n) => {
        const res = await postMcp(proxy.url("fx"), {
          jsonrpc: "2.0",
          id: n + 1,
          method: "tools/call",
          params: { name: "echo", arguments: { text: "x" } },
        }, session);
        const text = await res.text();
        if (res.status === 503 && res.headers.get("retry-after")) add("503 + Retry-After");
        else if (text.includes("exited during start-up")) add("exited during start-up");
        else if (res.status === 200 && text.includes('"result"')) add("ok");
        else add(`other ${res.status}: ${message(text)}`);
      })
    );
    await Promise.all(calls);
    return outcomes;
  } finally {
    await proxy.stop();
  }
}

function message(text: string): string {
  return /"message":"([^"]{0,80})/.exec(text)?.[1] ?? text.slice(0, 80);
}

function count(text: string, pattern: RegExp): number {
  return text.split("\n").filter((l) => pattern.test(l)).length;
}

if (import.meta.main) {
  const which = Deno.args[0] ?? "all";
  if (which === "failed-init" || which === "all") console.log("failed-init", await failedInit());
  if (which === "eviction" || which === "all") console.log("eviction", await eviction());
}
