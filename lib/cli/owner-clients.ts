/**
 * `main.ts clients list` and `clients revoke ID`: the registered clients (and those known only by
 * their metadata document URL, from their grants), and deleting one with its grants.
 */
import { isCimdClientId } from "../oauth/cimd.ts";
import type { Store } from "../store/store.ts";
import { type Io, printable, table, timestamp } from "./common.ts";
import { confirm, CONFIRMED, live, UNCONFIRMED } from "./owner-store.ts";

/** Prints the clients as a table, oldest first; the exit code. */
export async function listClients(store: Store, io: Io): Promise<number> {
  const now = Date.now();
  const clients = await store.listClients();
  const grants = await store.listGrants();
  const byClient = Map.groupBy(grants, (g) => g.clientId);
  const known = new Set(clients.map((c) => c.clientId));
  // Clients identified by a metadata document URL have no registration, only grants (a
  // deleted client's revoked grants stay until they expire, and are not a client).
  const documented = [...byClient.keys()].filter((id) => !known.has(id) && isCimdClientId(id));
  const rows: { createdAt: number; cells: string[] }[] = [];
  const count = (id: string) => {
    const of = byClient.get(id) ?? [];
    const active = of.filter((g) => live(g, now)).length;
    const revoked = of.filter((g) => g.revokedAt).length;
    return revoked ? `${active} live, ${revoked} revoked` : `${active} live`;
  };
  for (const c of clients) {
    rows.push({
      createdAt: c.createdAt,
      cells: [
        printable(c.clientId, 200),
        printable(c.clientName ?? "(unnamed)", 40),
        c.authMethod,
        redirectHosts(c.redirectUris),
        timestamp(c.createdAt),
        count(c.clientId),
      ],
    });
  }
  for (const id of documented) {
    const of = byClient.get(id)!;
    const first = Math.min(...of.map((g) => g.createdAt));
    rows.push({
      createdAt: first,
      cells: [
        printable(id, 200),
        "(metadata document)",
        "none",
        redirectHosts(of.map((g) => g.redirectUri)),
        timestamp(first),
        count(id),
      ],
    });
  }
  if (rows.length === 0) {
    io.out("no clients");
    return 0;
  }
  rows.sort((a, b) => a.createdAt - b.createdAt);
  const headers = ["CLIENT ID", "NAME", "AUTH", "REDIRECT HOSTS", "CREATED", "GRANTS"];
  for (const line of table(headers, rows.map((r) => r.cells))) io.out(line);
  return 0;
}

function redirectHosts(uris: string[]): string {
  const hosts = new Set<string>();
  for (const uri of uris) {
    try {
      const url = new URL(uri);
      hosts.add(url.host || `${url.protocol}`);
    } catch {
      hosts.add("?");
    }
  }
  return printable([...hosts].join(",") || "-", 60);
}

/**
 * Deletes a client: its grants (and their tokens) are revoked and its approvals forgotten. Exit
 * code 1 for an unknown id.
 */
export async function revokeClient(
  store: Store,
  id: string,
  io: Io,
  waitMs: number,
): Promise<number> {
  const client = await store.getClient(id);
  const grants = await store.grantsOfClient(id);
  if (!client && grants.length === 0) {
    io.err(`error: no client ${printable(id, 200)} (see "deno task clients list")`);
    return 1;
  }
  const active = grants.filter((g) => live(g, Date.now())).length;
  await store.deleteClient(id);
  const confirmed = await confirm(store, waitMs);
  const name = client?.clientName ? ` (${printable(client.clientName, 40)})` : "";
  io.out(
    `client ${printable(id, 200)}${name} deleted and ${active} live grant${
      active === 1 ? "" : "s"
    } ${confirmed ? CONFIRMED : UNCONFIRMED}`,
  );
  if (!client) {
    io.out(
      "note: this client is identified by its metadata document URL; it can ask to sign in " +
        "again, and the consent page and the allow-list decide.",
    );
  }
  return 0;
}
