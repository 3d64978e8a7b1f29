/** The log's two formats, the level filter, and the log settings in the config. */
import assert from "node:assert/strict";
import { createLogger, formatLine } from "../../lib/log.ts";
import { parseLogLine } from "../helpers/logs.ts";
import { parseConfig } from "../../lib/config/schema.ts";
import { ConfigError } from "../../lib/config/check.ts";
import { demoConfig } from "../../lib/config/load.ts";

const AT = new Date("2026-01-02T03:04:05.678Z");

Deno.test("text: time, padded level, message, then key=value; plain words bare, the rest JSON strings", () => {
  const line = formatLine("text", AT, "info", "session opened", {
    session: "gTdYwy2n",
    user: "alice@example.com",
    status: 200,
    ok: true,
    none: null,
    skipped: undefined,
    client: "Claude Desktop",
    zip: "01234",
    word: "true",
    ip: "127.0.0.1",
    version: "0.1.0",
  });
  assert.equal(
    line,
    "2026-01-02T03:04:05.678Z info  session opened session=gTdYwy2n user=alice@example.com " +
      'status=200 ok=true none=null client="Claude Desktop" zip="01234" word="true" ip=127.0.0.1 ' +
      "version=0.1.0\n",
  );
});

Deno.test("text lines parse back to the same values, whatever the strings hold", () => {
  const fields = {
    text: 'a "quoted" line\twith = signs and key=value look-alikes',
    number: 1.5,
    numeric: "42",
    empty: "",
    unicode: "naïve – ✓",
    control: "\u001b[31mred",
    path: "/mcp/files",
    float: "1e5",
    date: "2025-11-25",
  };
  const parsed = parseLogLine(formatLine("text", AT, "warn", "a message: with colon", fields));
  assert.deepEqual(parsed, {
    time: AT.toISOString(),
    level: "warn",
    message: "a message: with colon",
    fields,
  });
});

Deno.test("json: one object per line; records lead with their type; objects stay objects", () => {
  assert.equal(
    formatLine("json", AT, "error", "config reload failed", { problems: "x", gone: undefined }),
    '{"time":"2026-01-02T03:04:05.678Z","level":"error","msg":"config reload failed","problems":"x"}\n',
  );
  assert.equal(
    formatLine("json", AT, "info", "audit", { tool: "add", arguments: { a: 1 }, time: "x" }, true),
    '{"type":"audit","time":"2026-01-02T03:04:05.678Z","level":"info","tool":"add","arguments":{"a":1}}\n',
  );
  // In text, a record is a line whose message is its type; objects are JSON strings.
  assert.equal(
    formatLine("text", AT, "info", "audit", { tool: "add", arguments: { a: 1 } }, true),
    '2026-01-02T03:04:05.678Z info  audit tool=add arguments="{\\"a\\":1}"\n',
  );
});

Deno.test("logLevel filters lines and records alike", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "warn", write: (l) => void lines.push(l), now: () => AT });
  log.info("hidden");
  log.record("access", { status: 200 });
  log.warn("shown");
  assert.deepEqual(lines, ["2026-01-02T03:04:05.678Z warn  shown\n"]);
  assert.equal(log.enabled("info"), false);
});

Deno.test("config: logFormat and accessLog, with clear errors", () => {
  const parse = (extra: Record<string, unknown>) =>
    parseConfig({ mcpServers: { a: { command: "x" } }, ...extra }, {
      source: "/etc/mop/config.json",
      baseDir: "/etc/mop",
    });
  assert.deepEqual(parse({}).log, { logFormat: "text", accessLog: { to: "stderr" } });
  assert.deepEqual(parse({ logFormat: "json", accessLog: "off" }).log, {
    logFormat: "json",
    accessLog: { to: "off" },
  });
  assert.deepEqual(parse({ accessLog: "./logs/access.log" }).log.accessLog, {
    to: "file",
    path: "/etc/mop/logs/access.log",
  });
  const problems = (extra: Record<string, unknown>) => {
    try {
      parse(extra);
      return [];
    } catch (error) {
      return (error as ConfigError).problems;
    }
  };
  assert.deepEqual(problems({ logFormat: "yaml" }), ['logFormat: expected one of "text", "json"']);
  assert.deepEqual(problems({ accessLog: "stdout" }), [
    'accessLog: expected "off", "stderr" or a file path such as "./access.log", got "stdout"',
  ]);
});

Deno.test("the demo's child runs quietly: no Deno download progress, no colours", () => {
  const [demo] = demoConfig().servers;
  assert.ok(demo.args.includes("--quiet"));
  assert.equal(demo.env.NO_COLOR, "1");
});
