/**
 * A tiny loopback reverse proxy in front of several proxy instances, as a tunnel with several
 * connectors or a load balancer would be: each request goes to the next upstream in turn, with
 * its body and its answer's body streamed (SSE included) and redirects passed through. A client
 * that goes away cancels the answer's body, which closes the upstream connection.
 */

export interface RoundRobin {
  /** The public origin clients use, e.g. http://127.0.0.1:41234. */
  origin: string;
  /** The upstream each request went to, in order (method and path beside it). */
  readonly served: { upstream: string; method: string; path: string }[];
  /** Replaces the upstreams (a connector that went away, one that came). */
  use(upstreams: string[]): void;
  close(): Promise<void>;
}

/** Starts the front on an OS-picked loopback port, alternating over `upstreams`. */
export function roundRobin(upstreams: string[]): RoundRobin {
  let list = [...upstreams];
  let next = 0;
  const served: RoundRobin["served"] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (list.length === 0) return new Response("no upstream", { status: 502 });
    const upstream = list[next++ % list.length];
    const url = new URL(req.url);
    served.push({ upstream, method: req.method, path: url.pathname });
    const headers = new Headers(req.headers);
    headers.delete("host");
    try {
      const res = await fetch(upstream + url.pathname + url.search, {
        method: req.method,
        headers,
        body: req.body,
        redirect: "manual",
        ...(req.body ? { duplex: "half" } : {}),
      } as RequestInit);
      return new Response(res.body, { status: res.status, headers: new Headers(res.headers) });
    } catch {
      return new Response("upstream unreachable", { status: 502 });
    }
  });
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    served,
    use(upstreams) {
      list = [...upstreams];
      next = 0;
    },
    close: () => server.shutdown(),
  };
}
