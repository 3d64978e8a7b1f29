/** The official MCP SDK client, connected to the proxy over Streamable HTTP or legacy SSE. */
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
// @ts-types="@modelcontextprotocol/sdk/client/sse"
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

export { Client };

export interface ConnectOptions {
  transport?: "streamable" | "sse";
  name?: string;
  /** Answer sampling, elicitation and roots requests (declaring those capabilities). */
  answer?: boolean;
  headers?: Record<string, string>;
  /** The text the sampling handler answers with. */
  samplingText?: string;
}

export interface Connected {
  client: Client;
  logs: string[];
  listChanged: number;
  sessionId(): string | undefined;
  /** Ends the session with DELETE (Streamable HTTP only). */
  terminate(): Promise<void>;
  close(): Promise<void>;
}

/** Connects the SDK client to an MCP URL of the proxy. */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Connected> {
  const client = new Client(
    { name: options.name ?? "test-client", version: "1.0.0" },
    { capabilities: options.answer ? { sampling: {}, elicitation: {}, roots: {} } : {} },
  );
  const state = { logs: [] as string[], listChanged: 0 };
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    state.logs.push(String(n.params.data));
  });
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    state.listChanged++;
  });
  if (options.answer) {
    client.setRequestHandler(CreateMessageRequestSchema, (req) => {
      const first = req.params.messages[0]?.content;
      const prompt = first && "text" in first ? String(first.text) : "";
      return {
        role: "assistant",
        model: "test-model",
        content: { type: "text", text: `${options.samplingText ?? "reply to"} ${prompt}` },
      };
    });
    client.setRequestHandler(ElicitRequestSchema, () => ({
      action: "accept",
      content: { answer: `${options.name ?? "test-client"} says yes` },
    }));
    client.setRequestHandler(ListRootsRequestSchema, () => ({
      roots: [{ uri: `file:///roots/${options.name ?? "test-client"}`, name: "root" }],
    }));
  }
  const requestInit = options.headers ? { headers: options.headers } : undefined;
  const transport = options.transport === "sse"
    ? new SSEClientTransport(new URL(sseUrl(url)), {
      requestInit,
      eventSourceInit: { fetch: withHeaders(options.headers) },
    })
    : new StreamableHTTPClientTransport(new URL(url), { requestInit });
  await client.connect(transport);
  inArrivalOrder(transport);
  return {
    client,
    get logs() {
      return state.logs;
    },
    get listChanged() {
      return state.listChanged;
    },
    sessionId: () => (transport as StreamableHTTPClientTransport).sessionId,
    terminate: () => (transport as StreamableHTTPClientTransport).terminateSession(),
    close: () => client.close(),
  };
}

/** What `inArrivalOrder` needs of an SDK transport (v1 or v2) once its client is connected. */
interface Dispatching {
  // deno-lint-ignore no-explicit-any
  onmessage?: (message: any, extra?: any) => void;
}

/**
 * Makes a connected SDK client handle messages in the order they arrived. The SDK handles a
 * response at once but a notification one microtask later, so a progress notification read in
 * the same chunk as its request's response finds its handler already gone and is dropped: a
 * race a slow machine wins, whatever the server's pacing
 * (https://github.com/modelcontextprotocol/typescript-sdk/issues/2580). A response waits one
 * microtask too, behind the notifications that arrived before it. Call after `connect`.
 */
export function inArrivalOrder(transport: Dispatching): void {
  const dispatch = transport.onmessage;
  if (!dispatch) throw new Error("inArrivalOrder: connect the client first");
  transport.onmessage = (message, extra) => {
    const response = !("method" in message) && ("result" in message || "error" in message);
    if (response) queueMicrotask(() => dispatch(message, extra));
    else dispatch(message, extra);
  };
}

/** The legacy SSE URL for a server's /mcp/<name> URL. */
export function sseUrl(mcpUrl: string): string {
  return mcpUrl.replace(/\/mcp\/([^/]+)$/, "/sse/$1");
}

function withHeaders(headers?: Record<string, string>) {
  return (url: string | URL, init?: RequestInit) => {
    const h = new Headers(init?.headers);
    for (const [k, v] of Object.entries(headers ?? {})) h.set(k, v);
    return fetch(url, { ...init, headers: h });
  };
}

/** The text of a tool result's first content item. */
export function text(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content;
  return content?.[0]?.text ?? "";
}

/** A raw JSON-RPC `initialize` request, as a client without the SDK sends it. */
export const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "raw", version: "1" },
  },
} as const;

/** A raw `initialize` request for one protocol revision. */
export function initializeRequest(protocolVersion: string, name = "raw", id: number | string = 0) {
  return {
    ...INITIALIZE,
    id,
    params: { ...INITIALIZE.params, protocolVersion, clientInfo: { name, version: "1" } },
  };
}

/** POSTs a JSON-RPC message to an MCP endpoint (`initialize` by default), optionally in a session. */
export function postMcp(
  url: string,
  body: unknown = INITIALIZE,
  session?: string,
): Promise<Response> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  };
  if (session) headers["mcp-session-id"] = session;
  return fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
}
