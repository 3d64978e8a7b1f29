/**
 * The bench's Deno stdio server (the `fixture` server of `seq-fixture` and `big-1mib`): the two
 * tools those workloads call, `echo` and `big`, on the MCP SDK's low-level `Server` and stdio
 * transport. The test fixture (tests/fixtures/stdio-server.ts) answers the same calls without the
 * SDK so the tests start it cheaply; the bench keeps an SDK server so its figures stay comparable
 * with runs made before, when the fixture was SDK-based.
 *
 * Run: deno run --no-prompt --allow-env bench/sdk-server.ts
 */
// @ts-types="@modelcontextprotocol/sdk/server/index"
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
// @ts-types="@modelcontextprotocol/sdk/server/stdio"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
} from "@modelcontextprotocol/sdk/types.js";

const server = new Server(
  { name: "fixture", version: "1.0.0" },
  { capabilities: { tools: {} } },
);

const tools = [
  {
    name: "echo",
    description: "Returns the input text unchanged.",
    annotations: { readOnlyHint: true },
    inputSchema: { type: "object" as const, properties: { text: { type: "string" } } },
  },
  {
    name: "big",
    description: "Returns one text content of exactly `bytes` characters.",
    inputSchema: { type: "object" as const, properties: { bytes: { type: "number" } } },
  },
];

server.setRequestHandler(ListToolsRequestSchema, () => ({ tools }));

server.setRequestHandler(CallToolRequestSchema, (req) => {
  const args = req.params.arguments ?? {};
  if (req.params.name === "echo" && typeof args.text === "string") {
    return { content: [{ type: "text", text: args.text }] };
  }
  if (req.params.name === "big") {
    const bytes = typeof args.bytes === "number" ? args.bytes : 1048576;
    return { content: [{ type: "text", text: "x".repeat(bytes) }] };
  }
  throw new McpError(ErrorCode.InvalidParams, `Bad call: ${req.params.name}`);
});

await server.connect(new StdioServerTransport());
