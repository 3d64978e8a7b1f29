/**
 * Demo stdio MCP server bundled with mcp-oauth-proxy, so that `deno task start` without a
 * config.json still exposes something harmless to try. It needs no Deno permissions at all.
 *
 * Run: deno run --no-prompt examples/demo-server.ts
 */
// @ts-types="@modelcontextprotocol/sdk/server/index"
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
// @ts-types="@modelcontextprotocol/sdk/server/stdio"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";

type Args = Record<string, unknown>;

const ABOUT_URI = "demo://about";
const ABOUT_TEXT = [
  "This is the mcp-oauth-proxy demo server.",
  "It is a tiny stdio MCP server bundled with the proxy so there is something to connect to",
  "out of the box. Real MCP servers are configured in config.json.",
].join("\n");

const EXPLAIN_MCP = "Explain in a few short paragraphs what the Model Context Protocol (MCP) is, " +
  "what tools, resources and prompts are, and how a proxy like mcp-oauth-proxy lets remote " +
  "clients use local stdio MCP servers over HTTP with OAuth.";

const tools: Tool[] = [
  {
    name: "echo",
    description: "Returns the given text unchanged.",
    inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
  },
  {
    name: "add",
    description: "Adds two numbers.",
    inputSchema: {
      type: "object",
      properties: { a: { type: "number" }, b: { type: "number" } },
      required: ["a", "b"],
    },
  },
  {
    name: "time",
    description: "Returns the current UTC time as an ISO 8601 string.",
    inputSchema: { type: "object", properties: {} },
  },
  {
    name: "roll_dice",
    description: "Rolls one fair die with the given number of sides (2-1000, default 6).",
    inputSchema: {
      type: "object",
      properties: { sides: { type: "integer", minimum: 2, maximum: 1000, default: 6 } },
    },
  },
];

function text(t: string): CallToolResult {
  return { content: [{ type: "text", text: t }] };
}

function invalid(message: string): McpError {
  return new McpError(ErrorCode.InvalidParams, message);
}

function num(args: Args, key: string): number {
  const v = args[key];
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw invalid(`argument "${key}" must be a number`);
  }
  return v;
}

/** Returns a uniformly distributed integer in 1..sides. */
function rollDie(sides: number): number {
  // Rejection sampling avoids the modulo bias of `random % sides`.
  const limit = Math.floor(0x1_0000_0000 / sides) * sides;
  const buf = new Uint32Array(1);
  do {
    crypto.getRandomValues(buf);
  } while (buf[0] >= limit);
  return (buf[0] % sides) + 1;
}

function callTool(name: string, args: Args): CallToolResult {
  switch (name) {
    case "echo": {
      if (typeof args.text !== "string") throw invalid('argument "text" must be a string');
      return text(args.text);
    }
    case "add":
      return text(String(num(args, "a") + num(args, "b")));
    case "time":
      return text(new Date().toISOString());
    case "roll_dice": {
      const sides = args.sides ?? 6;
      if (!Number.isInteger(sides) || (sides as number) < 2 || (sides as number) > 1000) {
        throw invalid('argument "sides" must be an integer from 2 to 1000');
      }
      return text(String(rollDie(sides as number)));
    }
    default:
      throw invalid(`Unknown tool: ${name}`);
  }
}

const server = new Server(
  { name: "demo", version: "1.0.0" },
  {
    capabilities: { tools: {}, resources: {}, prompts: {} },
    instructions: "Demo server bundled with mcp-oauth-proxy. Try the echo, add, time and " +
      "roll_dice tools.",
  },
);

server.setRequestHandler(ListToolsRequestSchema, () => ({ tools }));

server.setRequestHandler(
  CallToolRequestSchema,
  (req) => callTool(req.params.name, req.params.arguments ?? {}),
);

server.setRequestHandler(ListResourcesRequestSchema, () => ({
  resources: [{
    uri: ABOUT_URI,
    name: "about",
    description: "What this demo server is.",
    mimeType: "text/plain",
  }],
}));

server.setRequestHandler(ReadResourceRequestSchema, (req) => {
  if (req.params.uri !== ABOUT_URI) throw invalid(`Unknown resource: ${req.params.uri}`);
  return { contents: [{ uri: ABOUT_URI, mimeType: "text/plain", text: ABOUT_TEXT }] };
});

server.setRequestHandler(ListPromptsRequestSchema, () => ({
  prompts: [{ name: "explain_mcp", description: "Ask the model to explain MCP briefly." }],
}));

server.setRequestHandler(GetPromptRequestSchema, (req) => {
  if (req.params.name !== "explain_mcp") throw invalid(`Unknown prompt: ${req.params.name}`);
  return {
    description: "Ask the model to explain MCP briefly.",
    messages: [{ role: "user", content: { type: "text", text: EXPLAIN_MCP } }],
  };
});

await server.connect(new StdioServerTransport());
