/**
 * A throwaway PostgreSQL cluster for tests: `initdb` and `pg_ctl` (Debian's `postgresql`
 * package) in a temporary directory (a copy of a cluster `initdb` set up once, see `template`),
 * listening on 127.0.0.1 on a free port and on a Unix socket in that directory, with password
 * (SCRAM) authentication. initdb refuses to run as root: when
 * the tests run as root the cluster belongs to the `postgres` user (`runuser`).
 *
 * @example
 * ```ts
 * const pg = await startPostgres();
 * try {
 *   const url = await pg.database("t1"); // postgres://mop:…@127.0.0.1:PORT/t1
 * } finally {
 *   await pg.stop();
 * }
 * ```
 */
import postgres from "postgres";
import { sha256 } from "../../lib/crypto.ts";

/** Where Debian installs the server binaries (`apt-get install postgresql`). */
export const PG_BIN = Deno.env.get("PG_BIN") ?? findBin();

function findBin(): string {
  for (const version of ["17", "16", "15", "14", "13"]) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    try {
      Deno.statSync(`${dir}/initdb`);
      return dir;
    } catch {
      // Not this version.
    }
  }
  return "/usr/lib/postgresql/15/bin";
}

export interface TestPostgres {
  /** The superuser's URL for the `postgres` database (password included). */
  url: string;
  host: string;
  port: number;
  user: string;
  password: string;
  /** The directory holding the Unix socket (`.s.PGSQL.<port>`). */
  socketDir: string;
  /** Creates an empty database and returns its URL. */
  database(name: string): Promise<string>;
  /**
   * A fresh store place for a few milliseconds instead of a database (a `CREATE DATABASE` copies
   * template1, about 0.2 s of the server's CPU): a role `name` that owns a schema of the same
   * name in the `postgres` database. The returned URL logs in as that role, so the unqualified
   * names of the store land in its own schema (the default `search_path` is `"$user", public`,
   * https://www.postgresql.org/docs/15/ddl-schemas.html#DDL-SCHEMAS-PATH). The places of a
   * cluster share what is per database, NOTIFY channels and advisory locks: cases that use them
   * take places one at a time.
   */
  place(name: string): Promise<string>;
  /**
   * Runs one SQL statement and returns the rows: on place `db` as its role, else as the
   * superuser on database `db`.
   */
  query(db: string, text: string): Promise<Record<string, unknown>[]>;
  /** The server's log so far (every statement, with `logStatements`). */
  log(): Promise<string>;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

const USER = "mop";

/**
 * Starts a cluster; retries on another port if the chosen one was taken meanwhile.
 * `logStatements` logs every statement the server runs (to count the queries of a request).
 */
export async function startPostgres(
  options: { logStatements?: boolean } = {},
): Promise<TestPostgres> {
  const dir = await Deno.makeTempDir({ prefix: "mop-pg-" });
  const owner = await clusterOwner();
  if (owner) await Deno.chown(dir, owner.uid, owner.gid);
  try {
    const { data, password } = await template(owner);
    await run(null, ["cp", "-a", data, `${dir}/data`]);
    let port = 0;
    for (let attempt = 0;; attempt++) {
      port = freePort();
      try {
        await run(owner, [
          `${PG_BIN}/pg_ctl`,
          "-D",
          `${dir}/data`,
          "-l",
          `${dir}/log`,
          "-w",
          "-t",
          "60",
          "-o",
          `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off ` +
          "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100" +
          (options.logStatements ? " -c log_statement=all" : ""),
          "start",
        ]);
        break;
      } catch (error) {
        if (attempt >= 2) throw error;
      }
    }
    return cluster(dir, owner, port, password);
  } catch (error) {
    const log = await Deno.readTextFile(`${dir}/log`).catch(() => "");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(`cannot start a test PostgreSQL: ${(error as Error).message}\n${log}`);
  }
}

/** Where initialised clusters are kept between test runs (see `template`). */
const CACHE = `${Deno.env.get("TMPDIR") ?? "/tmp"}/mop-test-fixtures`;

/**
 * An initialised cluster to copy: `initdb` costs about a second of CPU, a copy of its 40 MB a
 * tenth of that, and the tests start a few clusters per run. It is built once per binary
 * directory and owner into the cache (with its superuser password beside it); a parallel build
 * writes its own directory and renames it into place, so a copier never sees half a cluster.
 */
async function template(owner: Owner | null): Promise<{ data: string; password: string }> {
  const key = (await sha256(`${PG_BIN}\0${owner?.uid ?? Deno.uid()}\0${INITDB.join(" ")}`))
    .slice(0, 16);
  const target = `${CACHE}/pg-${key}`;
  const read = async () => ({
    data: `${target}/data`,
    password: await Deno.readTextFile(`${target}/password`),
  });
  try {
    return await read();
  } catch {
    // Not built yet.
  }
  await Deno.mkdir(CACHE, { recursive: true });
  const temp = await Deno.makeTempDir({ dir: CACHE, prefix: `pg-${key}-`, suffix: ".tmp" });
  if (owner) await Deno.chown(temp, owner.uid, owner.gid);
  const password = crypto.randomUUID().replaceAll("-", "");
  await Deno.writeTextFile(`${temp}/pwfile`, password, { mode: 0o600 });
  if (owner) await Deno.chown(`${temp}/pwfile`, owner.uid, owner.gid);
  await run(owner, [
    `${PG_BIN}/initdb`,
    "-D",
    `${temp}/data`,
    "--pwfile",
    `${temp}/pwfile`,
    ...INITDB,
  ]);
  await Deno.rename(`${temp}/pwfile`, `${temp}/password`);
  try {
    await Deno.rename(temp, target);
  } catch {
    // Another test file built it first: use theirs.
    await Deno.remove(temp, { recursive: true });
  }
  return await read();
}

/** How `initdb` sets up the clusters: the test superuser, SCRAM passwords, no fsync. */
const INITDB = ["-U", USER, "--auth=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"];

function cluster(
  dir: string,
  owner: Owner | null,
  port: number,
  password: string,
): TestPostgres {
  const host = "127.0.0.1";
  const urlOf = (db: string) => `postgres://${USER}:${password}@${host}:${port}/${db}`;
  const places = new Map<string, string>();
  /** Runs the statements in order on one connection; the rows of the last. */
  const query = async (db: string, ...texts: string[]) => {
    const sql = postgres(places.get(db) ?? urlOf(db), { max: 1, onnotice: () => {} });
    try {
      let rows: Record<string, unknown>[] = [];
      for (const text of texts) rows = [...await sql.unsafe(text)];
      return rows;
    } finally {
      await sql.end({ timeout: 1 });
    }
  };
  let stopped = false;
  return {
    url: urlOf("postgres"),
    host,
    port,
    user: USER,
    password,
    socketDir: dir,
    query,
    log: () => Deno.readTextFile(`${dir}/log`),
    async database(name: string) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      await query("postgres", `CREATE DATABASE ${name}`);
      return urlOf(name);
    },
    async place(name: string) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name) || name === USER || places.has(name)) {
        throw new Error(`bad or taken place name ${name}`);
      }
      // The password is hex (see `template`), so it needs no quoting beyond the literal's.
      await query(
        "postgres",
        `CREATE ROLE ${name} LOGIN PASSWORD '${password}'`,
        `CREATE SCHEMA ${name} AUTHORIZATION ${name}`,
      );
      const url = `postgres://${name}:${password}@${host}:${port}/postgres`;
      places.set(name, url);
      return url;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(owner, [`${PG_BIN}/pg_ctl`, "-D", `${dir}/data`, "-m", "immediate", "-w", "stop"])
        .catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

interface Owner {
  uid: number;
  gid: number;
}

/** As root, the cluster belongs to the `postgres` user; otherwise to whoever runs the tests. */
async function clusterOwner(): Promise<Owner | null> {
  if (Deno.uid() !== 0) return null;
  const out = await new Deno.Command("id", { args: ["postgres"], stdout: "piped", stderr: "null" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  const uid = /uid=(\d+)/.exec(text);
  const gid = /gid=(\d+)/.exec(text);
  if (!out.success || !uid || !gid) {
    throw new Error("running as root and there is no `postgres` user: apt-get install postgresql");
  }
  return { uid: Number(uid[1]), gid: Number(gid[1]) };
}

async function run(owner: Owner | null, argv: string[]): Promise<void> {
  const [cmd, ...args] = owner ? ["runuser", "-u", "postgres", "--", ...argv] : argv;
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    cwd: "/",
    env: { LC_ALL: "C" },
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`${argv[0].split("/").pop()} failed: ${text.trim()}`);
  }
}

/** A port the OS considers free right now (PostgreSQL cannot be told to pick one itself). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
