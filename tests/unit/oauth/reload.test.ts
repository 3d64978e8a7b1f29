import assert from "node:assert/strict";
import { parseConfigText } from "../../../lib/config/load.ts";
import { OAuthService } from "../../../lib/oauth/service.ts";
import { KvStore } from "../../../lib/store/kv.ts";
import { silentLogger } from "../../../lib/log.ts";

const USERS: Record<string, number> = { slow: 11, fast: 22 };

/** GitHub's `GET /users/{login}`, answering "slow" after a delay. */
const fakeFetch: typeof fetch = async (input) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const login = url.pathname.split("/").pop()!;
  if (login === "slow") await new Promise((r) => setTimeout(r, 100));
  if (!(login in USERS)) return new Response("{}", { status: 404 });
  return Response.json({ id: USERS[login], login });
};

function authWith(users: unknown[]) {
  const text = JSON.stringify({
    publicUrl: "https://proxy.example.com",
    github: { clientId: "Ov23liTestClient01", clientSecret: "s3cret-for-tests" },
    allow: { users },
    mcpServers: { fx: { command: "deno" } },
  });
  return parseConfigText(text, { source: "/tmp/config.json", env: () => undefined }).config;
}

Deno.test("reloadAllowList: of two overlapping reloads only the newer one swaps in", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mop-reload-" });
  const store = await KvStore.open(dir);
  try {
    const config = authWith([1]);
    const service = await OAuthService.create(config.auth!, config.servers, {
      store,
      log: silentLogger,
      fetch: fakeFetch,
    });
    const older = service.reloadAllowList(authWith(["slow"]).auth!);
    const newer = service.reloadAllowList(authWith(["fast"]).auth!);
    assert.deepEqual(await Promise.all([older, newer]), [false, true]);
    assert.deepEqual(service.policy.allow.logins, ["fast"]);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
