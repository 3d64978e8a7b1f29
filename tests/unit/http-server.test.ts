/** The listener's own accept loop: accept errors, the header timeout and the connection cap. */
import assert from "node:assert/strict";
import { type HttpServerOptions, serveHttp } from "../../lib/http-server.ts";
import { createLogger } from "../../lib/log.ts";

function recorder() {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: "debug", write: (l) => void lines.push(l) }) };
}

const fresh = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

function options(extra: Partial<HttpServerOptions>, log = recorder().log): HttpServerOptions {
  return {
    hostname: "127.0.0.1",
    port: 0,
    headerTimeoutMs: 10_000,
    maxConnections: 100,
    log,
    ...extra,
  };
}

Deno.test("an accept error (too many open files) is logged and retried; it never ends the listener", async () => {
  const { lines, log } = recorder();
  let failures = 3;
  const listen = (o: Deno.TcpListenOptions) => {
    const real = Deno.listen(o);
    // A listener whose first accepts fail the way EMFILE does.
    return new Proxy(real, {
      get(target, key) {
        if (key === "accept") {
          return () =>
            failures-- > 0
              ? Promise.reject(new Error("Too many open files (os error 24)"))
              : target.accept();
        }
        const value = Reflect.get(target, key);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  };
  const server = serveHttp(options({ listen }, log), () => new Response("ok"));
  try {
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/`, { client: fresh });
    assert.equal(await res.text(), "ok");
    assert.ok(failures < 0, "three failures, then an accept that worked");
    assert.ok(
      lines.some((l) => /cannot accept connections; retrying .*Too many open files/.test(l)),
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("a keep-alive connection serves several requests; shutdown waits for them", async () => {
  const server = serveHttp(options({}), (req) => new Response(new URL(req.url).pathname));
  const url = `http://127.0.0.1:${server.addr.port}`;
  for (const path of ["/a", "/b", "/c"]) assert.equal(await (await fetch(url + path)).text(), path);
  assert.equal(server.connections(), 1, "one pooled connection served all three");
  await server.shutdown();
  await server.finished;
  assert.equal(server.connections(), 0);
});

Deno.test("the remote address reaches the handler", async () => {
  const server = serveHttp(options({}), (_req, remote) => new Response(remote.hostname));
  try {
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/`, { client: fresh });
    assert.equal(await res.text(), "127.0.0.1");
  } finally {
    await server.shutdown();
  }
});
