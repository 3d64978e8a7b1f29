/**
 * `main.ts grants list [--user]`, `grants revoke ID` and `grants revoke --all [--user]`: the
 * sign-ins of GitHub users for clients, and ending them.
 */
import type { ClientRecord, GrantRecord, Store } from "../store/store.ts";
import { type Io, printable, table, timestamp } from "./common.ts";
import { confirm, CONFIRMED, live, REASON, UNCONFIRMED } from "./owner-store.ts";

/** `--user` matches a login (any case) or a numeric id. */
function matchesUser(grant: GrantRecord, user: string | undefined): boolean {
  if (user === undefined) return true;
  return /^\d+$/.test(user)
    ? grant.userId === Number(user)
    : grant.login.toLowerCase() === user.toLowerCase();
}

/** Prints the grants (of one user with `user`) as a table, oldest first; the exit code. */
export async function listGrants(store: Store, io: Io, user: string | undefined): Promise<number> {
  const now = Date.now();
  const grants = (await store.listGrants()).filter((g) => matchesUser(g, user))
    .sort((a, b) => a.createdAt - b.createdAt);
  if (grants.length === 0) {
    io.out(user === undefined ? "no grants" : `no grants for ${printable(user)}`);
    return 0;
  }
  const names = await clientNames(store, grants);
  const rows = grants.map((g) => [
    g.id,
    `${printable(g.login, 39)} (${g.userId})`,
    clientLabel(g.clientId, names.get(g.clientId)),
    printable(g.resource, 100),
    timestamp(g.createdAt),
    g.expiresAt <= now ? `${timestamp(g.expiresAt)} (expired)` : timestamp(g.expiresAt),
    g.revokedAt
      ? `${timestamp(g.revokedAt)} (${printable(g.revokedReason ?? "revoked", 40)})`
      : "-",
  ]);
  const headers = ["GRANT ID", "USER", "CLIENT", "RESOURCE", "CREATED", "EXPIRES", "REVOKED"];
  for (const line of table(headers, rows)) io.out(line);
  return 0;
}

async function clientNames(
  store: Store,
  grants: GrantRecord[],
): Promise<Map<string, ClientRecord | null>> {
  const out = new Map<string, ClientRecord | null>();
  for (const id of new Set(grants.map((g) => g.clientId))) out.set(id, await store.getClient(id));
  return out;
}

function clientLabel(id: string, record: ClientRecord | null | undefined): string {
  const name = record?.clientName;
  return name ? `${printable(id, 200)} (${printable(name, 40)})` : printable(id, 200);
}

function describeGrant(g: GrantRecord, client: ClientRecord | null): string {
  return `grant ${g.id} of ${printable(g.login, 39)} (${g.userId}) for client ${
    clientLabel(g.clientId, client)
  }`;
}

/** Revokes one grant (exit code 1 for an unknown id; 0 when it was already revoked). */
export async function revokeGrant(
  store: Store,
  id: string,
  io: Io,
  waitMs: number,
): Promise<number> {
  const grant = await store.getGrant(id);
  if (!grant) {
    io.err(`error: no grant ${printable(id, 100)} (see "deno task grants list")`);
    return 1;
  }
  const client = await store.getClient(grant.clientId);
  if (grant.revokedAt) {
    io.out(
      `${describeGrant(grant, client)} was already revoked at ${timestamp(grant.revokedAt)} (${
        printable(grant.revokedReason ?? "revoked", 60)
      }); nothing to do`,
    );
    return 0;
  }
  await store.revokeGrant(id, REASON, Date.now());
  const confirmed = await confirm(store, waitMs);
  io.out(`${describeGrant(grant, client)}: ${confirmed ? CONFIRMED : UNCONFIRMED}`);
  return 0;
}

/** Revokes every live grant (of one user with `user`); the exit code. */
export async function revokeAllGrants(
  store: Store,
  io: Io,
  user: string | undefined,
  waitMs: number,
): Promise<number> {
  const now = Date.now();
  const grants = (await store.listGrants()).filter((g) => live(g, now) && matchesUser(g, user));
  const whose = user === undefined ? "" : ` of ${printable(user)}`;
  if (grants.length === 0) {
    io.out(`no live grants${whose}; nothing to do`);
    return 0;
  }
  const names = await clientNames(store, grants);
  for (const grant of grants) {
    await store.revokeGrant(grant.id, REASON, now);
    io.out(`  ${describeGrant(grant, names.get(grant.clientId) ?? null)}`);
  }
  const confirmed = await confirm(store, waitMs);
  const n = grants.length;
  io.out(`${n} grant${n === 1 ? "" : "s"}${whose} ${confirmed ? CONFIRMED : UNCONFIRMED}`);
  return 0;
}
