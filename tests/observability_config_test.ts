/**
 * The observability configuration (compose.yaml, observability/, docs/runbook.md) checked
 * without running the stack: the real tools where installed (promtool, amtool, docker-compose;
 * Debian packages prometheus, prometheus-alertmanager, docker-compose), and the structure of
 * the dashboards, rules and compose file. Every metric and label a rule or a dashboard queries
 * must be one vigil exports.
 */
import { parse } from "yaml";
import { ALERT_STATES, NOTIFICATION_KINDS } from "../src/alerts/lifecycle.ts";
import { CHANNELS } from "../src/delivery/types.ts";
import { DELIVERY_STATUSES, DLQ_STATES, RETRY_OUTCOMES } from "../src/observability/metrics.ts";
import { mapPool } from "../src/util/pool.ts";
import { assert, assertEquals } from "./support/assert.ts";
import {
  alertingRules,
  ALERTMANAGER_CONFIG,
  DASHBOARD_FILES,
  dashboardPanels,
  dashboardQueries,
  DASHBOARDS_DIR,
  DATASOURCES_DIR,
  GRAFANA_INTERVALS,
  postgresPanelQueries,
  PROMETHEUS_CONFIG,
  readDashboards,
  recordingRuleNames,
  repoPath,
  ruleExpressions,
  ruleFiles,
  ruleTestFiles,
  substituteVariables,
  targetDatasource,
} from "./support/observability.ts";
import { which } from "./support/cluster.ts";

// ------------------------------------------------------------------------ helpers

/** A test that needs `command`: ignored, with the reason in its name, when it is missing. */
function toolTest(name: string, command: string, fn: (t: Deno.TestContext) => Promise<void>) {
  const present = which(command);
  Deno.test({
    name: present ? name : `${name} (skipped: ${command} not installed)`,
    ignore: !present,
    fn,
  });
}

async function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd: options.cwd ?? repoPath("."),
    clearEnv: options.env !== undefined,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assertEquals(code, 0, `${command} ${args.join(" ")} exited with ${code}:\n${text}`);
  return text;
}

/** GitHub's heading anchor: lower case, punctuation (but - and _) dropped, spaces to hyphens. */
function githubAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, "")
    .replace(/ /g, "-");
}

function runbookAnchors(): Set<string> {
  const text = Deno.readTextFileSync(repoPath("docs/runbook.md"));
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const m = !fenced && /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (m) anchors.add(githubAnchor(m[1]));
  }
  return anchors;
}

// ------------------------------------------------------------------------ what vigil exports

const JOB_LABELS = ["job", "instance"];
type Catalogue = Record<string, { labels: string[]; values?: Record<string, string[]> }>;

/** vigil's metric catalogue (DESIGN.md; src/observability/metrics.ts), as Prometheus stores it. */
function catalogue(): Catalogue {
  const c: Catalogue = {};
  const metric = (name: string, labels: string[], values: Record<string, string[]> = {}) => {
    c[name] = { labels: [...labels, ...JOB_LABELS], values };
  };
  const histogram = (name: string, labels: string[], values: Record<string, string[]> = {}) => {
    metric(`${name}_bucket`, [...labels, "le"], values);
    metric(`${name}_sum`, labels, values);
    metric(`${name}_count`, labels, values);
  };
  const channel = [...CHANNELS];
  const state = [...ALERT_STATES];
  // The scrape's job="vigil" wins; vigil's own `job` label (the cron job) becomes exported_job.
  const cronJob = [
    "alerts.evaluate",
    "alerts.retry",
    "runs.prune",
    "deliveries.prune",
    "clock.skew",
    "uptime.prune",
  ];

  metric("http_requests_total", ["method", "status", "ok", "route"], { ok: ["true", "false"] });
  histogram("http_request_duration_seconds", ["method", "status", "ok", "route"], {
    ok: ["true", "false"],
  });
  metric("pattern_executions_total", ["pattern_id", "status"], { status: ["success", "error"] });
  histogram("pattern_duration_seconds", ["pattern_id", "status"], {
    status: ["success", "error"],
  });
  histogram("pattern_step_duration_seconds", ["pattern_id", "step_index", "capability"]);
  metric("agent_invocations_total", ["agent_name", "capability", "status"], {
    status: ["success", "error", "rejected"],
  });
  histogram("agent_latency_seconds", ["agent_name", "capability"]);
  metric("circuit_breaker_state", ["agent_name", "state"], {
    state: ["closed", "open", "half_open"],
  });
  metric("alert_evaluations_total", ["result"], { result: ["matched", "not_matched", "error"] });
  metric("alerts_by_state", ["state"], { state });
  metric("alert_transitions_total", ["from", "to"], { from: state, to: state });
  metric("alert_notifications_total", ["kind"], { kind: [...NOTIFICATION_KINDS] });
  metric("silenced_notifications_total", []);
  metric("alerts_fired_total", []);
  metric("alert_deliveries_total", ["channel", "status"], {
    channel,
    status: [...DELIVERY_STATUSES],
  });
  histogram("alert_delivery_duration_seconds", ["channel"], { channel });
  metric("alert_dlq_entries", ["state"], { state: [...DLQ_STATES] });
  metric("alert_retry_attempts_total", ["channel", "outcome"], {
    channel,
    outcome: [...RETRY_OUTCOMES],
  });
  metric("cron_job_runs_total", ["exported_job", "status"], {
    exported_job: cronJob,
    status: ["success", "error"],
  });
  histogram("cron_job_duration_seconds", ["exported_job"], { exported_job: cronJob });
  for (
    const name of [
      "process_resident_memory_bytes",
      "process_heap_used_bytes",
      "process_heap_total_bytes",
      "process_start_time_seconds",
      "process_uptime_seconds",
      "process_cpu_seconds_total",
      "process_cpu_user_seconds_total",
      "process_cpu_system_seconds_total",
    ]
  ) metric(name, []);
  metric("vigil_build_info", ["version", "deno"]);
  metric("vigil_clock_skew_seconds", []);
  metric("vigil_database_up", []);
  metric("vigil_database_ping_seconds", []);
  metric("vigil_database_last_read_timestamp_seconds", []);
  metric("vigil_database_connections", ["state"], { state: ["in_use", "idle"] });
  metric("vigil_database_pool_max", []);
  metric("vigil_database_transactions_waiting", []);
  histogram("vigil_event_loop_lag_seconds", []);
  metric("http_rate_limited_total", ["reason"], { reason: ["api_key", "auth_failures"] });
  // Public alerts (the status page), read from the database: the same on every replica.
  metric("check_up", ["alert_id", "name", "group"]);
  metric("check_uptime_ratio", ["alert_id", "name", "group", "window"], {
    window: ["24h", "30d"],
  });
  metric("check_result_write_failures_total", []);
  metric("sla_traffic_dropped_total", []);
  metric("up", []);
  // Recording rules keep job plus the labels they aggregate by.
  for (const name of recordingRuleNames()) {
    metric(name, ["pattern_id", "agent_name", "channel", "state", "le"], {
      state: [...DLQ_STATES],
    });
  }
  return c;
}

// ------------------------------------------------------------------------ a small PromQL reader

const PROMQL_WORDS = new Set([
  // aggregations
  "sum",
  "min",
  "max",
  "avg",
  "group",
  "stddev",
  "stdvar",
  "count",
  "count_values",
  "bottomk",
  "topk",
  "quantile",
  "limitk",
  "limit_ratio",
  // keywords and modifiers
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "offset",
  "bool",
  "atan2",
  "inf",
  "nan",
  "start",
  "end",
  // functions
  "abs",
  "absent",
  "absent_over_time",
  "ceil",
  "changes",
  "clamp",
  "clamp_max",
  "clamp_min",
  "day_of_month",
  "day_of_week",
  "day_of_year",
  "days_in_month",
  "delta",
  "deriv",
  "exp",
  "floor",
  "histogram_count",
  "histogram_sum",
  "histogram_fraction",
  "histogram_quantile",
  "histogram_avg",
  "histogram_stddev",
  "histogram_stdvar",
  "holt_winters",
  "hour",
  "idelta",
  "increase",
  "irate",
  "label_join",
  "label_replace",
  "ln",
  "log2",
  "log10",
  "minute",
  "month",
  "predict_linear",
  "rate",
  "resets",
  "round",
  "scalar",
  "sgn",
  "sort",
  "sort_desc",
  "sort_by_label",
  "sort_by_label_desc",
  "sqrt",
  "time",
  "timestamp",
  "vector",
  "year",
  "avg_over_time",
  "min_over_time",
  "max_over_time",
  "sum_over_time",
  "count_over_time",
  "quantile_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "last_over_time",
  "present_over_time",
  "mad_over_time",
  "acos",
  "acosh",
  "asin",
  "asinh",
  "atan",
  "atanh",
  "cos",
  "cosh",
  "sin",
  "sinh",
  "tan",
  "tanh",
  "deg",
  "rad",
  "pi",
]);

interface Selector {
  metric: string;
  matchers: { label: string; op: string; value: string }[];
}

type Token = { kind: "ident" | "string" | "punct" | "other"; text: string };

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === "#") {
      while (i < expr.length && expr[i] !== "\n") i++;
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      let text = "";
      while (j < expr.length && expr[j] !== c) {
        if (expr[j] === "\\" && c !== "`") j++;
        text += expr[j];
        j++;
      }
      tokens.push({ kind: "string", text });
      i = j + 1;
    } else if (/[A-Za-z_:]/.test(c)) {
      let j = i;
      while (j < expr.length && /[A-Za-z0-9_:]/.test(expr[j])) j++;
      tokens.push({ kind: "ident", text: expr.slice(i, j) });
      i = j;
    } else if (/[0-9.]/.test(c)) {
      let j = i; // numbers and durations (5m, 1.5e3, 0x1f)
      while (j < expr.length && /[0-9A-Za-z_.+]/.test(expr[j])) {
        if (expr[j] === "+" && !/[eE]/.test(expr[j - 1])) break;
        j++;
      }
      tokens.push({ kind: "other", text: expr.slice(i, j) });
      i = j;
    } else if (/[=!]/.test(c) && /[=~]/.test(expr[i + 1] ?? "")) {
      tokens.push({ kind: "punct", text: expr.slice(i, i + 2) });
      i += 2;
    } else {
      tokens.push({ kind: "punct", text: c });
      i++;
    }
  }
  return tokens;
}

/** The vector selectors of a PromQL expression: metric names and their label matchers. */
function selectors(expr: string): Selector[] {
  const tokens = tokenize(expr);
  const out: Selector[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const next = tokens[i + 1];
    if (t.kind === "punct" && t.text === "{") {
      throw new Error(`selector without a metric name in: ${expr}`);
    }
    if (t.kind !== "ident") continue;
    if (PROMQL_WORDS.has(t.text)) {
      // Label lists: by (...), without (...), on (...), ignoring (...), group_left (...).
      if (
        ["by", "without", "on", "ignoring", "group_left", "group_right"].includes(t.text) &&
        next?.text === "("
      ) {
        while (i < tokens.length && tokens[i].text !== ")") i++;
      }
      continue;
    }
    if (next?.text === "(") throw new Error(`unknown PromQL function ${t.text} in: ${expr}`);
    const selector: Selector = { metric: t.text, matchers: [] };
    if (next?.text === "{") {
      i += 2;
      while (i < tokens.length && tokens[i].text !== "}") {
        if (tokens[i].text === ",") {
          i++;
          continue;
        }
        const [label, op, value] = [tokens[i], tokens[i + 1], tokens[i + 2]];
        assert(
          label?.kind === "ident" && op?.kind === "punct" && value?.kind === "string",
          `cannot read the label matchers of ${t.text} in: ${expr}`,
        );
        selector.matchers.push({ label: label.text, op: op.text, value: value.text });
        i += 3;
      }
    }
    out.push(selector);
  }
  return out;
}

const GROUPING = ["by", "without", "on", "ignoring", "group_left", "group_right"];

/** The labels an expression aggregates or matches by: `by (a, b)`, `on (c)`, `without (d)`, … */
function groupingLabels(expr: string): string[] {
  const tokens = tokenize(expr);
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (!GROUPING.includes(tokens[i].text) || tokens[i + 1]?.text !== "(") continue;
    for (i += 2; i < tokens.length && tokens[i].text !== ")"; i++) {
      if (tokens[i].kind === "ident") out.push(tokens[i].text);
    }
  }
  return out;
}

/** Problems with the metrics and labels an expression selects; empty when all is well. */
function metricProblems(expr: string, known: Catalogue): string[] {
  const problems: string[] = [];
  // A misspelt grouping label (`by (form, to)`) is no error to Prometheus: one series, no label.
  const selected = selectors(expr).map((s) => known[s.metric]).filter((e) => e !== undefined);
  for (const label of new Set(groupingLabels(expr))) {
    if (!selected.some((e) => e.labels.includes(label))) {
      problems.push(`grouped by ${label}, a label of no metric it selects`);
    }
  }
  for (const { metric, matchers } of selectors(expr)) {
    const entry = known[metric];
    if (!entry) {
      problems.push(`${metric} is not a metric vigil exports`);
      continue;
    }
    if (!matchers.some((m) => m.label === "job" && m.op === "=" && m.value === "vigil")) {
      problems.push(`${metric} is selected without job="vigil"`);
    }
    for (const { label, op, value } of matchers) {
      if (!entry.labels.includes(label)) {
        problems.push(`${metric} has no label ${label}`);
        continue;
      }
      const allowed = entry.values?.[label];
      if (!allowed || op.startsWith("!")) continue;
      const values = op === "="
        ? [value]
        : /^[\w.]+(\|[\w.]+)*$/.test(value)
        ? value.split("|")
        : [];
      for (const v of values) {
        if (!allowed.includes(v)) problems.push(`${metric}{${label}="${v}"} never exists`);
      }
    }
  }
  return problems;
}

// ------------------------------------------------------------------------ (a) the real tools

toolTest("observability: promtool check rules", "promtool", async () => {
  await run("promtool", ["check", "rules", ...ruleFiles()]);
});

toolTest("observability: promtool test rules", "promtool", async () => {
  // One promtool per file, as many at once as there are cores (promtool tests one file on one
  // core): the largest first, so the longest one does not start last.
  const files = ruleTestFiles().sort((a, b) => Deno.statSync(b).size - Deno.statSync(a).size);
  await mapPool(files, Math.max(2, navigator.hardwareConcurrency), async (file) => {
    const out = await run("promtool", ["test", "rules", file]);
    assert(!/FAILED/.test(out), out);
  });
});

toolTest("observability: promtool check config", "promtool", async () => {
  // The committed config reads the metrics token from secrets/ (a volume at run time): check a
  // copy of the unchanged config next to the rules and a stand-in token file.
  const dir = await Deno.makeTempDir({ prefix: "vigil-prometheus-" });
  try {
    await Deno.copyFile(repoPath(PROMETHEUS_CONFIG), `${dir}/prometheus.yml`);
    await Deno.mkdir(`${dir}/rules`);
    for (const file of ruleFiles()) {
      await Deno.copyFile(file, `${dir}/rules/${file.split("/").pop()}`);
    }
    await Deno.mkdir(`${dir}/secrets`);
    await Deno.writeTextFile(`${dir}/secrets/metrics_token`, "stand-in-metrics-token");
    const out = await run("promtool", ["check", "config", `${dir}/prometheus.yml`]);
    assert(/SUCCESS: 3 rule files found/.test(out), out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

toolTest("observability: amtool check-config", "amtool", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vigil-alertmanager-" });
  try {
    await Deno.copyFile(repoPath(ALERTMANAGER_CONFIG), `${dir}/alertmanager.yml`);
    await Deno.mkdir(`${dir}/secrets`);
    await Deno.writeTextFile(`${dir}/secrets/webhook_token`, "stand-in-webhook-token");
    const out = await run("amtool", ["check-config", `${dir}/alertmanager.yml`]);
    assert(/SUCCESS/.test(out) && /3 inhibit rules/.test(out), out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

toolTest("observability: docker-compose config -q", "docker-compose", async (t) => {
  // Only these variables: the caller's environment (or a developer's .env) must not help.
  const env = { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/tmp" };
  await t.step("with the values of .env.example", async () => {
    await run("docker-compose", [
      "--env-file",
      ".env.example",
      "-f",
      "compose.yaml",
      "config",
      "-q",
    ], {
      env,
    });
  });
  await t.step("with no variables at all (every one has a default)", async () => {
    const empty = await Deno.makeTempFile({ prefix: "vigil-env-" });
    try {
      await run("docker-compose", ["--env-file", empty, "-f", "compose.yaml", "config", "-q"], {
        env,
      });
    } finally {
      await Deno.remove(empty);
    }
  });
});

// ------------------------------------------------------------------------ compose.yaml

interface ComposeService {
  image?: string;
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  restart?: string;
  depends_on?: Record<string, { condition: string }>;
}

Deno.test("observability: compose.yaml", async (t) => {
  const compose = parse(Deno.readTextFileSync(repoPath("compose.yaml"))) as {
    services: Record<string, ComposeService>;
    volumes: Record<string, unknown>;
  };
  const services = compose.services;
  const oneShot = (s: ComposeService) => s.restart === "no";

  await t.step("has the stack's services, on the expected images", () => {
    const images: Record<string, RegExp> = {
      postgres: /^postgres:17(\b|$)/,
      vigil: /^denoland\/deno:2\.9\.\d+$/,
      prometheus: /^prom\/prometheus:v3\./,
      alertmanager: /^prom\/alertmanager:v0\./,
      grafana: /^grafana\/grafana:12\./,
      jaeger: /^jaegertracing\/jaeger:2\./,
    };
    for (const [name, image] of Object.entries(images)) {
      assert(services[name], `service ${name} is missing`);
      assert(image.test(services[name].image ?? ""), `${name}: image ${services[name].image}`);
    }
  });

  await t.step("binds every port to 127.0.0.1", () => {
    for (const [name, service] of Object.entries(services)) {
      for (const port of service.ports ?? []) {
        assert(String(port).startsWith("127.0.0.1:"), `${name}: port ${port} is not local`);
      }
    }
  });

  await t.step("gives every long-running service a healthcheck", () => {
    for (const [name, service] of Object.entries(services)) {
      if (oneShot(service)) continue;
      assert(service.healthcheck?.test && !service.healthcheck.disable, `${name}: no healthcheck`);
    }
  });

  await t.step("waits for one-shot services to complete, and for a healthy database", () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        if (oneShot(services[dependency])) {
          assertEquals(condition, "service_completed_successfully", `${name} -> ${dependency}`);
        }
      }
    }
    assertEquals(services.vigil.depends_on?.postgres?.condition, "service_healthy");
  });

  await t.step("keeps state in named volumes that are declared", () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(":")[0];
        if (source.startsWith(".") || source.startsWith("/")) continue; // bind mount
        assert(source in compose.volumes, `${name}: volume ${source} is not declared`);
      }
    }
    for (
      const [name, path] of [
        ["postgres", "/var/lib/postgresql/data"],
        ["prometheus", "/prometheus"],
        ["grafana", "/var/lib/grafana"],
        ["alertmanager", "/alertmanager"],
      ]
    ) {
      assert(
        services[name].volumes?.some((v) => v.endsWith(`:${path}`) && !v.startsWith(".")),
        `${name}: ${path} is not a named volume`,
      );
    }
  });

  await t.step("takes every secret from the environment, never from the file", () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (!/PASSWORD|TOKEN|API_KEY|DATABASE_URL/.test(key)) continue;
        assert(/\$\{[A-Z_]+:-\}/.test(String(value)), `${name}: ${key} is not from .env`);
      }
    }
  });

  await t.step("documents every variable it reads in .env.example", () => {
    const text = Deno.readTextFileSync(repoPath("compose.yaml"));
    const example = Deno.readTextFileSync(repoPath(".env.example"));
    const used = new Set([...text.matchAll(/\$\{([A-Z_]+)/g)].map((m) => m[1]));
    for (const name of used) {
      assert(new RegExp(`^${name}=`, "m").test(example), `${name} is not in .env.example`);
    }
  });

  await t.step("points vigil at postgres, Jaeger and Prometheus inside the network", () => {
    const env = services.vigil.environment ?? {};
    assertEquals(env.HOST, "0.0.0.0");
    assert(/@postgres:5432\/vigil$/.test(env.DATABASE_URL), env.DATABASE_URL);
    assertEquals(env.OTEL_EXPORTER_OTLP_ENDPOINT, "http://jaeger:4318");
    assertEquals(env.PROMETHEUS_URL, "http://prometheus:9090");
  });
});

// ------------------------------------------------------------------------ (b) Grafana

/**
 * The views of the schema `reporting` and their columns, read from the migration that creates
 * them (`create or replace view reporting.x as select <expr> as <name>, ... from`).
 */
function reportingViews(): Map<string, string[]> {
  const dir = repoPath("migrations");
  const views = new Map<string, string[]>();
  for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
    const text = Deno.readTextFileSync(`${dir}/${entry.name}`);
    for (
      const m of text.matchAll(
        /create (?:or replace )?view (reporting\.\w+) as\s+select\b([\s\S]*?)\n\s*from\b/gi,
      )
    ) {
      // Split the select list on top-level commas; a column is its alias, else its last name.
      const columns: string[] = [];
      let depth = 0;
      let item = "";
      for (const c of m[2] + ",") {
        if (c === "(") depth++;
        if (c === ")") depth--;
        if (c === "," && depth === 0) {
          const alias = /\bas\s+(\w+)\s*$/i.exec(item.trim());
          columns.push(alias ? alias[1] : item.trim().split(".").pop()!);
          item = "";
        } else item += c;
      }
      views.set(m[1], columns);
    }
  }
  return views;
}

interface Datasource {
  uid: string;
  type: string;
  isDefault?: boolean;
}

function provisionedDatasources(): Datasource[] {
  return [...Deno.readDirSync(repoPath(DATASOURCES_DIR))]
    .filter((e) => /\.ya?ml$/.test(e.name))
    .flatMap((e) =>
      (parse(Deno.readTextFileSync(repoPath(`${DATASOURCES_DIR}/${e.name}`))) as {
        datasources: Datasource[];
      }).datasources
    );
}

Deno.test("observability: Grafana provisioning and dashboards", async (t) => {
  const datasources = provisionedDatasources();
  const byUid = new Map(datasources.map((d) => [d.uid, d]));
  const dashboards = readDashboards();

  await t.step("provisions Prometheus (default), Jaeger and PostgreSQL with fixed uids", () => {
    assertEquals(byUid.get("prometheus")?.type, "prometheus");
    assertEquals(byUid.get("prometheus")?.isDefault, true);
    assertEquals(byUid.get("jaeger")?.type, "jaeger");
    assertEquals(byUid.get("postgres")?.type, "grafana-postgresql-datasource");
    assertEquals(datasources.filter((d) => d.isDefault).length, 1);
  });

  await t.step("loads the dashboards into the vigil folder", () => {
    const doc = parse(
      Deno.readTextFileSync(
        repoPath("observability/grafana/provisioning/dashboards/dashboards.yml"),
      ),
    ) as { providers: { folder: string; options: { path: string } }[] };
    assertEquals(doc.providers.map((p) => p.folder), ["vigil"]);
    const compose = Deno.readTextFileSync(repoPath("compose.yaml"));
    assert(
      compose.includes(`./observability/grafana/dashboards:${doc.providers[0].options.path}:ro`),
      "compose.yaml does not mount the dashboards where the provider reads them",
    );
  });

  await t.step("reads every dashboard file", () => {
    const files = [...Deno.readDirSync(repoPath(DASHBOARDS_DIR))]
      .filter((e) => e.name.endsWith(".json"))
      .map((e) => e.name);
    assertEquals(files.sort(), [...DASHBOARD_FILES].sort());
  });

  await t.step("gives the dashboards distinct uids and titles", () => {
    assertEquals(new Set(dashboards.map((d) => d.dashboard.uid)).size, dashboards.length);
    assertEquals(new Set(dashboards.map((d) => d.dashboard.title)).size, dashboards.length);
  });

  for (const { file, dashboard } of dashboards) {
    await t.step(file, async (t) => {
      const panels = dashboardPanels(dashboard);
      const variables = (dashboard.templating?.list ?? []).map((v) => v.name);

      await t.step("valid schema version, 10 s refresh, provisionable", () => {
        assert(
          Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 39 &&
            dashboard.schemaVersion <= 41,
          `schemaVersion ${dashboard.schemaVersion}`,
        );
        assertEquals(dashboard.refresh, "10s");
        assertEquals(dashboard.id ?? null, null);
        assert(panels.length >= 6, "too few panels");
      });

      await t.step("unique panel ids", () => {
        const ids = panels.map((p) => p.id);
        assert(ids.every((id) => Number.isInteger(id) && id > 0), `ids ${ids}`);
        assertEquals(new Set(ids).size, ids.length, `duplicate panel ids: ${ids}`);
      });

      await t.step("panels do not overlap", () => {
        const boxes = panels.filter((p) => p.type !== "row").map((p) => ({ p, g: p.gridPos! }));
        for (const [i, a] of boxes.entries()) {
          assert(a.g && a.g.x + a.g.w <= 24, `${a.p.title}: outside the 24-column grid`);
          for (const b of boxes.slice(i + 1)) {
            const apart = a.g.x + a.g.w <= b.g.x || b.g.x + b.g.w <= a.g.x ||
              a.g.y + a.g.h <= b.g.y || b.g.y + b.g.h <= a.g.y;
            assert(apart, `${a.p.title} overlaps ${b.p.title}`);
          }
        }
      });

      await t.step("every panel has a description, coloured thresholds and a query", () => {
        for (const panel of panels) {
          assert((panel.description ?? "").trim().length > 20, `${panel.title}: no description`);
          if (panel.type === "row") continue;
          if (panel.type === "text") {
            // A note, not a query: it must say something.
            const content = (panel.options as { content?: string } | undefined)?.content ?? "";
            assert(content.trim().length > 40, `${panel.title}: an empty text panel`);
            assertEquals(panel.targets ?? [], [], `${panel.title}: a text panel runs no query`);
            continue;
          }
          const steps = panel.fieldConfig?.defaults?.thresholds?.steps ?? [];
          assert(steps.length > 0 && steps[0].value === null, `${panel.title}: no thresholds`);
          assert((panel.targets ?? []).length > 0, `${panel.title}: no targets`);
          const refIds = (panel.targets ?? []).map((t) => t.refId);
          assertEquals(new Set(refIds).size, refIds.length, `${panel.title}: duplicate refIds`);
        }
      });

      await t.step("every datasource uid exists in the provisioning", () => {
        for (const panel of panels) {
          for (const ref of [panel.datasource, ...(panel.targets ?? []).map((t) => t.datasource)]) {
            if (!ref) continue;
            const ds = byUid.get(ref.uid ?? "");
            assert(ds, `${panel.title}: datasource uid ${ref.uid} is not provisioned`);
            assertEquals(ref.type, ds.type, `${panel.title}: datasource type of ${ref.uid}`);
          }
          for (const target of panel.targets ?? []) {
            assert(targetDatasource(panel, target).uid, `${panel.title}: target without uid`);
          }
        }
        for (const variable of dashboard.templating?.list ?? []) {
          if (variable.datasource) assert(byUid.has(variable.datasource.uid ?? ""), variable.name);
        }
      });

      await t.step("queries are complete once variables are substituted", () => {
        for (const panel of panels) {
          for (const target of panel.targets ?? []) {
            const query = target.expr ?? target.rawSql;
            assert(query, `${panel.title} ${target.refId}: empty query`);
            const done = substituteVariables(query, variables);
            assert(!/\$|\[\[/.test(done), `${panel.title}: unresolved variable in ${done}`);
          }
        }
      });
    });
  }

  await t.step("Agent Performance filters by an `agent` variable usable as a regex", () => {
    const agent = dashboards.find((d) => d.file === "agent-performance.json")!.dashboard;
    const variable = agent.templating?.list.find((v) => v.name === "agent");
    assert(variable, "no agent variable");
    assertEquals(variable.includeAll, true);
    assertEquals(variable.allValue, ".*");
    const query = JSON.stringify(variable.query);
    assert(/label_values\((agent_invocations_total|circuit_breaker_state)/.test(query), query);
    for (const panel of dashboardPanels(agent)) {
      for (const target of panel.targets ?? []) {
        assert(target.expr?.includes('agent_name=~"$agent"'), `${panel.title}: not filtered`);
      }
    }
  });

  await t.step("Alert Delivery reads the DLQ from the reporting views only", () => {
    // Grafana's role may read the schema `reporting` (migrations/007_reporting_views.sql) and
    // nothing else: a panel selecting a table of vigil's would fail in production.
    const views = reportingViews();
    assertEquals([...views.keys()].sort(), ["reporting.dlq_latest", "reporting.dlq_summary"]);
    const queries = postgresPanelQueries();
    assertEquals(queries.map((q) => q.panel).sort(), [
      "DLQ by channel and state",
      "Latest DLQ rows",
    ]);
    for (const { panel, sql } of queries) {
      assert(!/\$/.test(sql), `${panel}: uses a Grafana macro (the e2e test runs it as is)`);
      assert(/^\s*SELECT\b/i.test(sql) && !/;\s*\S/.test(sql), `${panel}: not one SELECT`);
      const relations = [...sql.matchAll(/\b(?:FROM|JOIN)\s+([\w.]+)/gi)].map((m) => m[1]);
      assert(relations.length > 0, `${panel}: reads nothing`);
      for (const relation of relations) {
        assert(views.has(relation), `${panel}: reads ${relation}, not a reporting view`);
      }
      // Every column it selects is one of its view's.
      const [view] = relations;
      const select = /^\s*SELECT\b([\s\S]*?)\bFROM\b/i.exec(sql)![1];
      for (const item of select.split(",")) {
        const column = item.trim().split(/\s+/)[0];
        assert(views.get(view)!.includes(column), `${panel}: ${view} has no column ${column}`);
      }
    }
    const summary = queries.find((q) => q.panel === "DLQ by channel and state")!;
    assert(/FROM reporting\.dlq_summary\b/i.test(summary.sql), summary.sql);
    const latest = queries.find((q) => q.panel === "Latest DLQ rows")!;
    assert(/FROM reporting\.dlq_latest\b/i.test(latest.sql), latest.sql);
    assert(/ORDER BY queued_at DESC\s+LIMIT 50\s*$/i.test(latest.sql), latest.sql);
  });

  await t.step("no query falls back to a constant (a blind panel shows 0, not No data)", () => {
    // `or on() vector(0)` made an outage look like a quiet, healthy system: 0 requests, 0 %
    // errors, 100 % availability. A ratio that must read 0 when nothing failed writes
    // `(errors or 0 * total) / total`, which is 0 only while `total` has data.
    const constant = dashboardQueries().filter((q) => /\bvector\s*\(/.test(q.expr));
    assertEquals(constant.map((q) => `${q.dashboard} / ${q.panel} [${q.refId}]`), []);
  });

  await t.step("heatmaps read histogram buckets in Grafana's heatmap format", () => {
    const heatmaps = dashboards.flatMap(({ dashboard }) =>
      dashboardPanels(dashboard).filter((p) => p.type === "heatmap")
    );
    assert(heatmaps.length > 0, "no heatmap");
    for (const panel of heatmaps) {
      for (const target of panel.targets ?? []) {
        assertEquals(target.format, "heatmap", panel.title);
        assert(/_bucket\{/.test(target.expr ?? "") && /by \(le\)/.test(target.expr ?? ""));
        assertEquals(target.legendFormat, "{{le}}", panel.title);
      }
    }
  });

  await t.step("Database & process covers the database, the pool and the process", () => {
    const dbProcess = dashboards.find((d) => d.file === "database-process.json")!.dashboard;
    const exprs = dashboardPanels(dbProcess).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const text = exprs.join("\n");
    for (
      const needed of [
        "vigil_database_up",
        "vigil_database_ping_seconds",
        'vigil_database_connections{job="vigil", state="in_use"}',
        "vigil_database_connections{",
        "vigil_database_pool_max",
        "vigil_database_transactions_waiting",
        "time() - vigil_database_last_read_timestamp_seconds",
        "vigil_clock_skew_seconds",
        "rate(process_cpu_seconds_total",
        "rate(process_cpu_user_seconds_total",
        "rate(process_cpu_system_seconds_total",
        "process_resident_memory_bytes",
        "process_heap_used_bytes",
        "process_heap_total_bytes",
        "histogram_quantile(0.5, sum by (job, instance, le) (rate(vigil_event_loop_lag_seconds_bucket",
        "histogram_quantile(0.99, sum by (job, instance, le) (rate(vigil_event_loop_lag_seconds_bucket",
        "process_uptime_seconds",
      ]
    ) assert(text.includes(needed), `no panel queries ${needed}`);
    const gc = dashboardPanels(dbProcess).find((p) => p.type === "text");
    assert(gc && /no GC metric/i.test(String((gc.options as { content: string }).content)));
  });

  await t.step("Alert Delivery ends with an Alert lifecycle row", () => {
    const delivery = dashboards.find((d) => d.file === "alert-delivery.json")!.dashboard;
    const panels = dashboardPanels(delivery);
    const row = panels.find((p) => p.type === "row" && p.title === "Alert lifecycle");
    assert(row?.gridPos, "no Alert lifecycle row");
    const y = row.gridPos.y;
    const others = panels.filter((p) => p !== row);
    for (const p of others.filter((p) => p.gridPos!.y < y)) {
      assert(p.gridPos!.y + p.gridPos!.h <= y, `${p.title} reaches into the Alert lifecycle row`);
    }
    const inRow = others.filter((p) => p.gridPos!.y > y);
    const targets = inRow.flatMap((p) => p.targets ?? []);
    const find = (needed: string) => {
      const target = targets.find((t) => t.expr?.includes(needed));
      assert(target, `the Alert lifecycle row does not query ${needed}`);
      return target;
    };
    // Read from the database in the background, like the DLQ counts: No data once stale.
    assert(
      find('max by (state) (alerts_by_state{job="vigil"})').expr!.includes(
        'and on() (time() - max(vigil_database_last_read_timestamp_seconds{job="vigil"}) < 30)',
      ),
      "alerts_by_state is shown even when stale",
    );
    const transitions = find('sum by (from, to) (rate(alert_transitions_total{job="vigil"}');
    assertEquals(transitions.legendFormat, "{{from}} → {{to}}");
    assertEquals(
      find('sum by (kind) (rate(alert_notifications_total{job="vigil"}').legendFormat,
      "{{kind}}",
    );
    find('rate(silenced_notifications_total{job="vigil"}');
  });

  await t.step("SLA & Uptime reads the public checks once per alert, and not when stale", () => {
    const sla = dashboards.find((d) => d.file === "sla-uptime.json")!.dashboard;
    const exprs = dashboardPanels(sla).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));
    const checks = exprs.filter((e) => /\bcheck_(up|uptime_ratio)\{/.test(e));
    assert(checks.length >= 3, "no panel queries check_up and check_uptime_ratio");
    for (const expr of checks) {
      // Every replica exports every public alert with the same value: max, never sum.
      for (const m of expr.matchAll(/(\w+)(?: by \(([^)]*)\))? \(check_(?:up|uptime_ratio)\{/g)) {
        assertEquals([m[1], m[2]], ["max", "alert_id, name, group"], expr);
      }
      assert(
        expr.includes(
          'and on() (time() - max(vigil_database_last_read_timestamp_seconds{job="vigil"}) < 30)',
        ),
        `shown even when stale: ${expr}`,
      );
    }
    assert(checks.some((e) => e.includes('check_uptime_ratio{job="vigil", window="30d"}')));
    // The SLO panels read the recorded ratios of slo.yml, for every window the stats show.
    const text = exprs.join("\n");
    for (const w of ["1h", "6h", "3d", "30d"]) {
      assert(text.includes(`job:http_request_errors:ratio_rate${w}{job="vigil"}`), w);
    }
    assert(text.includes('job:http_requests_over_1s:ratio_rate30d{job="vigil"}'));
  });

  await t.step("dashboardQueries() covers every Prometheus target", () => {
    const queries = dashboardQueries();
    const targets = dashboards.flatMap(({ dashboard }) =>
      dashboardPanels(dashboard).flatMap((p) =>
        (p.targets ?? []).filter((t) => targetDatasource(p, t).uid === "prometheus")
      )
    );
    assertEquals(queries.length, targets.length);
    for (const q of queries) assert(!q.expr.includes("$"), q.expr);
    assert(queries.some((q) => q.expr.includes(`[${GRAFANA_INTERVALS.__rate_interval}]`)));
  });
});

// ------------------------------------------------------------------------ (c) alert rules

Deno.test("observability: alert rules", async (t) => {
  const alerts = alertingRules();
  const names = new Set(alerts.map((a) => a.rule.alert));

  await t.step("has the alerts the stack promises", () => {
    for (
      const name of [
        "VigilDown",
        "HighErrorRate",
        "HighLatencyP95",
        "PatternFailureRate",
        "CircuitBreakerOpen",
        "AlertDeliveryFailureRate",
        "AlertDLQBacklog",
        "AlertRetriesExhausted",
        "CronJobNotRunning",
        "AvailabilitySLOBurnRatePage",
        "AvailabilitySLOBurnRateTicket",
        "LatencySLOBurnRatePage",
        "LatencySLOBurnRateTicket",
        "ErrorRateSLOBurnRatePage",
        "ErrorRateSLOBurnRateTicket",
      ]
    ) assert(names.has(name), `${name} is missing`);
    const highError = alerts.filter((a) => a.rule.alert === "HighErrorRate");
    assertEquals(highError.map((a) => a.rule.labels?.severity).sort(), ["critical", "warning"]);
  });

  await t.step("every alert has severity, service, summary, description and a runbook", () => {
    for (const { rule } of alerts) {
      assert(["critical", "warning"].includes(rule.labels?.severity ?? ""), rule.alert);
      assertEquals(rule.labels?.service, "vigil", rule.alert);
      for (const key of ["summary", "description", "runbook"]) {
        assert((rule.annotations?.[key] ?? "").trim(), `${rule.alert}: no ${key}`);
      }
    }
  });

  await t.step("runbook anchors follow GitHub's heading ids", () => {
    assertEquals(githubAnchor("VigilDown"), "vigildown");
    assertEquals(githubAnchor("Alert Delivery & DLQ"), "alert-delivery--dlq");
    assertEquals(githubAnchor("`exported_job` labels"), "exported_job-labels");
  });

  await t.step("every runbook annotation points at a section of docs/runbook.md", () => {
    const anchors = runbookAnchors();
    for (const { rule } of alerts) {
      const m = /^docs\/runbook\.md#([a-z0-9_-]+)$/.exec(rule.annotations?.runbook ?? "");
      assert(m, `${rule.alert}: runbook ${rule.annotations?.runbook}`);
      assert(anchors.has(m[1]), `${rule.alert}: docs/runbook.md has no heading #${m[1]}`);
      assertEquals(m[1], rule.alert.toLowerCase(), `${rule.alert}: its section is its name`);
    }
  });

  await t.step("every alert has a unit test that fires it and one that stays silent", () => {
    const fired = new Set<string>();
    const silent = new Set<string>();
    for (const file of ruleTestFiles()) {
      const doc = parse(Deno.readTextFileSync(file)) as {
        tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
      };
      for (const test of doc.tests) {
        for (const check of test.alert_rule_test ?? []) {
          (check.exp_alerts?.length ? fired : silent).add(check.alertname);
        }
      }
    }
    for (const name of names) {
      assert(fired.has(name), `no test fires ${name}`);
      assert(silent.has(name), `no test shows ${name} silent`);
    }
  });
});

// ------------------------------------------------------------------------ (d) metric names

Deno.test("observability: every metric and label queried is one vigil exports", async (t) => {
  const known = catalogue();

  await t.step("the PromQL reader finds selectors and labels", () => {
    assertEquals(
      selectors(
        'sum by (le) (rate(x_bucket{job="vigil", a=~"b|c"}[5m])) / on() y or vector(0)',
      ),
      [
        {
          metric: "x_bucket",
          matchers: [{ label: "job", op: "=", value: "vigil" }, {
            label: "a",
            op: "=~",
            value: "b|c",
          }],
        },
        { metric: "y", matchers: [] },
      ],
    );
    assertEquals(metricProblems('agent_invocations_total{job="vigil", status="failed"}', known), [
      'agent_invocations_total{status="failed"} never exists',
    ]);
    assertEquals(metricProblems('cron_job_runs_total{job="vigil", agent="x"}', known), [
      "cron_job_runs_total has no label agent",
    ]);
    assertEquals(metricProblems("nope_total", known), ["nope_total is not a metric vigil exports"]);
    assertEquals(
      metricProblems(
        'sum by (form, to) (rate(alert_transitions_total{job="vigil", to="firing"}[5m]))',
        known,
      ),
      ["grouped by form, a label of no metric it selects"],
    );
    assertEquals(metricProblems('alert_notifications_total{job="vigil", kind="sent"}', known), [
      'alert_notifications_total{kind="sent"} never exists',
    ]);
  });

  await t.step("rules", () => {
    const problems = ruleExpressions().flatMap(({ name, expr }) =>
      metricProblems(expr, known).map((p) => `${name}: ${p}`)
    );
    assertEquals(problems, []);
  });

  await t.step("dashboards", () => {
    const problems = dashboardQueries().flatMap(({ dashboard, panel, expr }) =>
      metricProblems(expr, known).map((p) => `${dashboard} / ${panel}: ${p}`)
    );
    assertEquals(problems, []);
  });
});
