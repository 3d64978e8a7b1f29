/**
 * PostStream, the answer to one POST: JSON when the final message comes first, SSE as soon as
 * anything else comes (or the request runs long), events logged for Last-Event-ID resumption,
 * and the log of a stream delivered in full dropped.
 */
import assert from "node:assert/strict";
import { PostStream } from "../../lib/mcp/post-stream.ts";
import { Session } from "../../lib/mcp/sessions.ts";
import { SseRegistry, SseWriter } from "../../lib/mcp/sse.ts";
import { ReplayBudget } from "../../lib/mcp/replay.ts";
import { SERVER_DEFAULTS, type ServerConfig } from "../../lib/config/schema.ts";

const SERVER: ServerConfig = {
  ...SERVER_DEFAULTS,
  name: "fx",
  command: "true",
  args: [],
  env: {},
  logArguments: false,
};

function setup(version = "2025-11-25") {
  const registry = new SseRegistry(1024 * 1024);
  const session = new Session(
    SERVER,
    { key: "alice" },
    "streamable",
    version,
    { sampling: false, elicitation: false, roots: false },
    "test",
    new ReplayBudget(1024 * 1024),
  );
  const source = { stream: () => new SseWriter(registry) };
  return { session, source, registry };
}

/** The SSE events of a response body, read until the stream ends. */
async function events(response: Response): Promise<string[]> {
  const text = await response.text();
  return text.split("\n\n").filter((e) => e !== "");
}

const progress = '{"jsonrpc":"2.0","method":"notifications/progress"}';
const result = (id: number) => `{"jsonrpc":"2.0","id":${id},"result":{}}`;

Deno.test("the final message first: a JSON response, nothing logged", async () => {
  const { session, source } = setup();
  const stream = new PostStream(source, session, "deferred", 1, false);
  stream.end(result(1));
  const response = await stream.response;
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.equal(await response.text(), result(1));
  assert.equal(session.events.length, 0);
});

Deno.test("a batch answers with one JSON array in the order the answers came", async () => {
  const { session, source } = setup("2025-03-26");
  const stream = new PostStream(source, session, "json", 2, true);
  stream.part(1).end(result(2));
  stream.part(0).end(result(1));
  assert.equal(await (await stream.response).text(), `[${result(2)},${result(1)}]`);
});

Deno.test("a message before the final one switches to SSE: priming event, ids, then the end", async () => {
  const { session, source } = setup();
  const stream = new PostStream(source, session, "deferred", 1, false);
  stream.send(progress);
  const response = await stream.response;
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  stream.end(result(1));
  assert.deepEqual(await events(response), [
    "id: 1_0\nretry: 2000\ndata: ",
    `id: 1_1\ndata: ${progress}`,
    `id: 1_2\ndata: ${result(1)}`,
  ]);
  // Delivered in full on a live connection: nobody will resume it, so its log is dropped.
  assert.equal(session.events.length, 0);
  assert.equal(session.resumable.size, 0);
});

Deno.test("a client that accepts only JSON never gets a stream; messages before the end are dropped", async () => {
  const { session, source } = setup();
  const stream = new PostStream(source, session, "json", 1, false);
  stream.send(progress);
  stream.end(result(1));
  assert.equal(await (await stream.response).text(), result(1));
});

Deno.test("a request that runs long switches to SSE with nothing to send yet", async () => {
  const { session, source } = setup("2025-06-18");
  const stream = new PostStream(source, session, "deferred", 1, false);
  stream.openSse();
  const response = await stream.response;
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  stream.end(result(1));
  // 2025-06-18 has no priming event.
  assert.deepEqual(await events(response), [`id: 1_1\ndata: ${result(1)}`]);
});

Deno.test("a dropped stream is logged for resumption and continues on the new connection", async () => {
  const { session, source, registry } = setup();
  const stream = new PostStream(source, session, "sse", 1, false);
  const first = await stream.response;
  await first.body!.cancel(); // The client's connection drops.
  stream.send(progress);
  // Kept for Last-Event-ID resumption: the priming event's id is where the client resumes.
  assert.deepEqual(session.events.after(1, 0), [`id: 1_1\ndata: ${progress}\n\n`]);
  assert.equal(session.resumable.get(1), stream);
  const resumed = new SseWriter(registry);
  for (const event of session.events.after(1, 0)) resumed.write(event);
  stream.attach(resumed);
  stream.end(result(1));
  assert.deepEqual(await events(new Response(resumed.body)), [
    `id: 1_1\ndata: ${progress}`,
    `id: 1_2\ndata: ${result(1)}`,
  ]);
  assert.equal(session.resumable.size, 0);
  assert.equal(session.events.length, 0);
});

Deno.test("a final answer that found no live connection stays in the log for a later resume", async () => {
  const { session, source } = setup();
  const stream = new PostStream(source, session, "sse", 1, false);
  await (await stream.response).body!.cancel();
  stream.end(result(1));
  assert.deepEqual(session.events.after(1, 0), [`id: 1_1\ndata: ${result(1)}\n\n`]);
  assert.equal(session.resumable.size, 0);
});

Deno.test("answers after the last one expected are ignored", async () => {
  const { session, source } = setup();
  const stream = new PostStream(source, session, "deferred", 1, false);
  stream.end(result(1));
  stream.end(result(2));
  stream.send(progress);
  assert.equal(await (await stream.response).text(), result(1));
});
