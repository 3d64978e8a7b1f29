/**
 * Counters for `/metrics` in the Prometheus text format (served to loopback clients only), and
 * the audit log line of each tool call and of each request a server's filters refused.
 * @see https://prometheus.io/docs/instrumenting/exposition_formats/
 */
import type { Completion } from "./router/mux.ts";
import type { Refusal } from "./router/gate.ts";
import type { RoutedSession } from "./router/router.ts";
import type { Logger } from "./log.ts";

type Labels = Record<string, string | number>;

/** A family of counters keyed by their label values. */
class Counter {
  readonly values = new Map<string, number>();

  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

/** A gauge family computed when scraped. */
export interface GaugeSample {
  name: string;
  help: string;
  samples: Array<{ labels: Labels; value: number }>;
}

/** The proxy's counters. */
export class Metrics {
  readonly requests = new Counter(
    "mop_http_requests_total",
    "HTTP requests by route class and status.",
  );
  readonly logins = new Counter("mop_logins_total", "GitHub sign-ins by outcome.");
  readonly tokens = new Counter("mop_tokens_issued_total", "Token pairs issued, by grant type.");
  readonly toolCalls = new Counter("mop_tool_calls_total", "Tool calls by server and outcome.");
  readonly refusals = new Counter(
    "mop_policy_refusals_total",
    "Requests refused by a server's tool, prompt or resource filters, by server and method.",
  );
  readonly #logLinesDropped: () => number;

  constructor(sources: { logLinesDropped?: () => number } = {}) {
    this.#logLinesDropped = sources.logLinesDropped ?? (() => 0);
  }

  /** Renders every counter and the gauges passed in. */
  render(gauges: GaugeSample[]): string {
    const lines: string[] = [];
    const counters = [this.requests, this.logins, this.tokens, this.toolCalls, this.refusals];
    for (const c of counters) {
      lines.push(`# HELP ${c.name} ${c.help}`, `# TYPE ${c.name} counter`);
      for (const [labels, value] of c.values) lines.push(`${c.name}${labels} ${value}`);
    }
    lines.push(
      "# HELP mop_log_lines_dropped_total Log lines dropped because stderr was not read in time.",
      "# TYPE mop_log_lines_dropped_total counter",
      `mop_log_lines_dropped_total ${this.#logLinesDropped()}`,
    );
    for (const g of gauges) {
      lines.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
      for (const s of g.samples) lines.push(`${g.name}${labelText(s.labels)} ${s.value}`);
    }
    return lines.join("\n") + "\n";
  }
}

/**
 * One audit line (a record of type `audit`) per tool call: who, through which client, which server and tool, how long,
 * and the outcome. Arguments appear only when the server's config opts in (`logArguments`).
 */
export function auditLogger(metrics: Metrics, log: Logger): (completion: Completion) => void {
  return (c) => {
    if (c.method !== "tools/call") return;
    metrics.toolCalls.inc({ server: c.server, outcome: c.outcome });
    const { identity } = c.session as RoutedSession;
    const line: Record<string, unknown> = {
      user_id: identity.userId,
      login: identity.login,
      client_id: identity.clientId,
      server: c.server,
      tool: c.tool,
      ms: c.durationMs,
      outcome: c.outcome,
    };
    if (c.arguments !== undefined) line.arguments = c.arguments;
    log.record("audit", line);
  };
}

/**
 * One audit line (type `audit`, outcome `refused`) per request a server's filters refused: who,
 * through which client, which server, method and item, and the rule that hid the item.
 */
export function refusalLogger(metrics: Metrics, log: Logger): (refusal: Refusal) => void {
  return (r) => {
    metrics.refusals.inc({ server: r.server, method: r.method });
    const { identity } = r.session as RoutedSession;
    log.record("audit", {
      user_id: identity?.userId,
      login: identity?.login,
      client_id: identity?.clientId,
      server: r.server,
      method: r.method,
      item: r.item,
      outcome: "refused",
      rule: r.rule,
    });
  };
}
