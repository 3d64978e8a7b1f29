/**
 * A real OAuthService in this process, over a temporary store, for unit tests of the endpoint
 * rules: no proxy process, no network (GitHub is never asked unless a test supplies `fetch`).
 */
import { parseConfigText } from "../../lib/config/load.ts";
import { OAuthService } from "../../lib/oauth/service.ts";
import { type ClientRecord, KvStore } from "../../lib/store/kv.ts";
import { silentLogger } from "../../lib/log.ts";

export const SERVICE_ORIGIN = "https://proxy.example.com";

/** Runs `fn` with a service for one server `fx`, the given clients stored; cleans up after. */
export async function withService(
  clients: ClientRecord[],
  fn: (svc: OAuthService) => Promise<void> | void,
): Promise<void> {
  const text = JSON.stringify({
    publicUrl: SERVICE_ORIGIN,
    github: { clientId: "Ov23liTestClient01", clientSecret: "s3cret-for-tests" },
    allow: { users: [1] },
    mcpServers: { fx: { command: "deno" } },
  });
  const config = parseConfigText(text, { source: "/tmp/config.json", env: () => undefined }).config;
  const dir = await Deno.makeTempDir({ prefix: "mop-oauth-unit-" });
  const store = await KvStore.open(dir);
  try {
    for (const client of clients) await store.putClient(client);
    const svc = await OAuthService.create(config.auth!, config.servers, {
      store,
      log: silentLogger,
    });
    await fn(svc);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}
