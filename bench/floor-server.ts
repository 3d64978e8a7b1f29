/**
 * Diagnostic target `http-floor`: the least a Streamable HTTP server can do, in its own Deno
 * process, with no stdio server behind it. It answers `initialize`, `echo` (both servers'
 * argument shapes), `big` and `trigger-long-running-operation` itself, so its figures are the
 * cost of the SDK client, fetch and loopback HTTP alone: the floor under any bridge measured by
 * the same harness, and its RSS is that of a bare `Deno.serve` process.
 *
 * Run: deno run --allow-net=127.0.0.1 bench/floor-server.ts   (prints "listening PORT")
 */

type Json = Record<string, unknown>;

const encoder = new TextEncoder();
let sessions = 0;

function json(body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    headers: { "content-type": "application/json", ...headers },
  });
}

function text(t: string) {
  return { content: [{ type: "text", text: t }] };
}

function call(params: Json): Json {
  const args = (params.arguments ?? {}) as Json;
  switch (params.name) {
    case "echo":
      return typeof args.message === "string"
        ? text(`Echo: ${args.message}`)
        : text(String(args.text));
    case "big":
      return text("x".repeat(Number(args.bytes ?? 1048576)));
    default:
      return { ...text(`unknown tool ${params.name}`), isError: true };
  }
}

/** trigger-long-running-operation: progress notifications on an SSE stream, then the result. */
function longRunning(id: unknown, params: Json): Response {
  const args = (params.arguments ?? {}) as Json;
  const duration = Number(args.duration ?? 10);
  const steps = Number(args.steps ?? 5);
  const token = (params._meta as Json | undefined)?.progressToken;
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (message: unknown) =>
        controller.enqueue(encoder.encode(`event: message\ndata: ${JSON.stringify(message)}\n\n`));
      for (let i = 1; i <= steps; i++) {
        await new Promise((r) => setTimeout(r, (duration * 1000) / steps));
        if (token !== undefined) {
          send({
            jsonrpc: "2.0",
            method: "notifications/progress",
            params: { progressToken: token, progress: i, total: steps },
          });
        }
      }
      send({
        jsonrpc: "2.0",
        id,
        result: text(`Long running operation completed. Duration: ${duration} seconds`),
      });
      controller.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
  if (req.method === "DELETE") return new Response(null, { status: 200 });
  if (req.method !== "POST") return new Response(null, { status: 405, headers: { allow: "POST" } });
  const msg = await req.json() as Json;
  if (msg.id === undefined) return new Response(null, { status: 202 });
  const params = (msg.params ?? {}) as Json;
  if (msg.method === "initialize") {
    return json({
      jsonrpc: "2.0",
      id: msg.id,
      result: {
        protocolVersion: params.protocolVersion,
        capabilities: { tools: {} },
        serverInfo: { name: "http-floor", version: "1.0.0" },
      },
    }, { "mcp-session-id": `floor-${++sessions}` });
  }
  if (msg.method === "tools/call" && params.name === "trigger-long-running-operation") {
    return longRunning(msg.id, params);
  }
  if (msg.method === "tools/call") {
    return json({ jsonrpc: "2.0", id: msg.id, result: call(params) });
  }
  return json({ jsonrpc: "2.0", id: msg.id, result: {} });
});

console.log(`listening ${server.addr.port}`);
