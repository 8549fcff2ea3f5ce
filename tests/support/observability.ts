/**
 * vigil's observability configuration (observability/: Prometheus rules, Alertmanager, Grafana
 * dashboards) read as data, for the configuration test and the end-to-end test: every query a
 * dashboard or a rule runs, ready to send to a real Prometheus, and configs for a local
 * Prometheus / Alertmanager derived from the committed ones.
 */
import { parse, stringify } from "yaml";

const ROOT = new URL("../../", import.meta.url);

/** Absolute path of a file in the repository. */
export function repoPath(relative: string): string {
  return new URL(relative, ROOT).pathname;
}

export const PROMETHEUS_CONFIG = "observability/prometheus/prometheus.yml";
export const RULES_DIR = "observability/prometheus/rules";
export const RULE_TESTS_DIR = "observability/prometheus/tests";
export const ALERTMANAGER_CONFIG = "observability/alertmanager/alertmanager.yml";
export const DASHBOARDS_DIR = "observability/grafana/dashboards";
export const DATASOURCES_DIR = "observability/grafana/provisioning/datasources";
export const DASHBOARD_FILES = [
  "api-overview.json",
  "agent-performance.json",
  "alert-delivery.json",
  "database-process.json",
  "sla-uptime.json",
] as const;

/**
 * What Grafana's built-in interval variables become outside Grafana. `$__rate_interval` is at
 * least four scrape intervals in Grafana; a minute suits an end-to-end test's short scrapes.
 */
export const GRAFANA_INTERVALS: Readonly<Record<string, string>> = {
  __rate_interval: "1m",
  __interval: "30s",
  __interval_ms: "30000",
  __range: "1h",
  __range_s: "3600",
  __range_ms: "3600000",
};

// ------------------------------------------------------------------------ Grafana dashboards

export interface DatasourceRef {
  type?: string;
  uid?: string;
}

export interface GrafanaTarget {
  refId: string;
  datasource?: DatasourceRef;
  expr?: string;
  rawSql?: string;
  [key: string]: unknown;
}

export interface GrafanaPanel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: DatasourceRef;
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: GrafanaTarget[];
  /** Panels inside a collapsed row. */
  panels?: GrafanaPanel[];
  fieldConfig?: {
    defaults?: {
      thresholds?: { mode?: string; steps?: { color: string; value: number | null }[] };
      [key: string]: unknown;
    };
    overrides?: unknown[];
  };
  [key: string]: unknown;
}

export interface TemplateVariable {
  name: string;
  type: string;
  datasource?: DatasourceRef;
  query?: unknown;
  includeAll?: boolean;
  multi?: boolean;
  allValue?: string | null;
  [key: string]: unknown;
}

export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  refresh: string;
  panels: GrafanaPanel[];
  templating?: { list: TemplateVariable[] };
  [key: string]: unknown;
}

/** The dashboards of DASHBOARD_FILES, parsed. */
export function readDashboards(): { file: string; dashboard: Dashboard }[] {
  return DASHBOARD_FILES.map((file) => ({
    file,
    dashboard: JSON.parse(
      Deno.readTextFileSync(repoPath(`${DASHBOARDS_DIR}/${file}`)),
    ) as Dashboard,
  }));
}

/** Every panel of a dashboard, including those inside collapsed rows. */
export function dashboardPanels(dashboard: Dashboard): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const visit = (panels: GrafanaPanel[]) => {
    for (const panel of panels) {
      out.push(panel);
      if (panel.panels) visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  return out;
}

/** The datasource a target runs on: its own, else its panel's. */
export function targetDatasource(panel: GrafanaPanel, target: GrafanaTarget): DatasourceRef {
  return target.datasource ?? panel.datasource ?? {};
}

/**
 * Replaces Grafana's variables in a query: built-in intervals by GRAFANA_INTERVALS, and the
 * dashboard's template variables (`$agent`, `${agent}`, `${agent:regex}`, `[[agent]]`) by
 * `value` — `.*` selects everything in the regex matchers the dashboards use.
 */
export function substituteVariables(query: string, variables: string[], value = ".*"): string {
  let out = query.replace(
    /\$\{(__\w+)\}|\$(__\w+)/g,
    (match, braced: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare ?? "";
      return GRAFANA_INTERVALS[name] ?? match;
    },
  );
  for (const name of [...variables].sort((a, b) => b.length - a.length)) {
    out = out
      .replaceAll(new RegExp(`\\$\\{${name}(?::\\w+)?\\}`, "g"), value)
      .replaceAll(`[[${name}]]`, value)
      .replaceAll(new RegExp(`\\$${name}(?![A-Za-z0-9_])`, "g"), value);
  }
  return out;
}

function isPrometheus(ref: DatasourceRef): boolean {
  return ref.type === "prometheus" || ref.uid === "prometheus";
}

function isPostgres(ref: DatasourceRef): boolean {
  return ref.type === "grafana-postgresql-datasource" || ref.type === "postgres" ||
    ref.uid === "postgres";
}

/**
 * Every Prometheus target expression of the dashboards, with template variables replaced
 * by `.*` and Grafana's interval variables by concrete durations (GRAFANA_INTERVALS).
 */
export function dashboardQueries(): {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}[] {
  const out: { dashboard: string; panel: string; refId: string; expr: string }[] = [];
  for (const { dashboard } of readDashboards()) {
    const variables = (dashboard.templating?.list ?? []).map((v) => v.name);
    for (const panel of dashboardPanels(dashboard)) {
      for (const target of panel.targets ?? []) {
        if (!isPrometheus(targetDatasource(panel, target)) || !target.expr) continue;
        out.push({
          dashboard: dashboard.title,
          panel: panel.title,
          refId: target.refId,
          expr: substituteVariables(target.expr, variables),
        });
      }
    }
  }
  return out;
}

/** Every SQL query of the dashboards' PostgreSQL panels (they use no Grafana macros). */
export function postgresPanelQueries(): { dashboard: string; panel: string; sql: string }[] {
  const out: { dashboard: string; panel: string; sql: string }[] = [];
  for (const { dashboard } of readDashboards()) {
    for (const panel of dashboardPanels(dashboard)) {
      for (const target of panel.targets ?? []) {
        if (!isPostgres(targetDatasource(panel, target)) || !target.rawSql) continue;
        out.push({ dashboard: dashboard.title, panel: panel.title, sql: target.rawSql });
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------------ Prometheus rules

export interface RecordingRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export type Rule = RecordingRule | AlertingRule;

export interface RuleGroup {
  name: string;
  interval?: string;
  rules: Rule[];
}

function yamlFiles(dir: string): string[] {
  return [...Deno.readDirSync(repoPath(dir))]
    .filter((e) => e.isFile && /\.ya?ml$/.test(e.name))
    .map((e) => repoPath(`${dir}/${e.name}`))
    .sort();
}

/** Absolute paths of the rule files (what prometheus.yml's `rule_files` loads). */
export function ruleFiles(): string[] {
  return yamlFiles(RULES_DIR);
}

/** Absolute paths of the promtool unit-test files. */
export function ruleTestFiles(): string[] {
  return yamlFiles(RULE_TESTS_DIR);
}

/** Every rule group of every rule file. */
export function ruleGroups(): { file: string; group: RuleGroup }[] {
  return ruleFiles().flatMap((file) => {
    const doc = parse(Deno.readTextFileSync(file)) as { groups: RuleGroup[] };
    return doc.groups.map((group) => ({ file, group }));
  });
}

/** Every recording and alerting rule expression. */
export function ruleExpressions(): { group: string; name: string; expr: string }[] {
  return ruleGroups().flatMap(({ group }) =>
    group.rules.map((rule) => ({
      group: group.name,
      name: "record" in rule ? rule.record : rule.alert,
      expr: rule.expr.trim(),
    }))
  );
}

/** The alerting rules (one entry per rule: HighErrorRate has two). */
export function alertingRules(): { group: string; rule: AlertingRule }[] {
  return ruleGroups().flatMap(({ group }) =>
    group.rules.filter((r): r is AlertingRule => "alert" in r).map((rule) => ({
      group: group.name,
      rule,
    }))
  );
}

/** Names of the recording rules. */
export function recordingRuleNames(): string[] {
  return ruleGroups().flatMap(({ group }) =>
    group.rules.filter((r): r is RecordingRule => "record" in r).map((r) => r.record)
  );
}

// ------------------------------------------------------------------------ configs for tests

interface ScrapeConfig {
  job_name: string;
  scrape_interval?: string;
  scrape_timeout?: string;
  authorization?: { type?: string; credentials_file?: string };
  static_configs: { targets: string[]; labels?: Record<string, string> }[];
  [key: string]: unknown;
}

interface PrometheusConfig {
  global?: Record<string, unknown>;
  rule_files?: string[];
  alerting?: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
  scrape_configs: ScrapeConfig[];
}

/**
 * A Prometheus config for a test, derived from the committed prometheus.yml: the `vigil` job
 * (same name, path and bearer-token setting) scraping `vigil` (host:port), the committed rule
 * files, and Alertmanager at `alertmanager` when given. Short intervals by default; rule groups
 * with an `interval` of their own (slo.yml: 1m) keep it.
 */
export function prometheusConfig(options: {
  vigil: string;
  alertmanager?: string;
  /** File holding METRICS_TOKEN; omitted: no Authorization header. */
  metricsTokenFile?: string;
  scrapeInterval?: string;
  evaluationInterval?: string;
  /** Rule files to load instead of the committed ones (say, copies with shorter intervals). */
  ruleFiles?: string[];
}): string {
  const committed = parse(
    Deno.readTextFileSync(repoPath(PROMETHEUS_CONFIG)),
  ) as PrometheusConfig;
  const vigil = committed.scrape_configs.find((s) => s.job_name === "vigil");
  if (!vigil) throw new Error(`${PROMETHEUS_CONFIG} has no scrape job named vigil`);
  const interval = options.scrapeInterval ?? "1s";
  const job: ScrapeConfig = {
    ...vigil,
    scrape_interval: interval,
    scrape_timeout: interval,
    static_configs: [{ targets: [options.vigil] }],
  };
  if (options.metricsTokenFile) {
    job.authorization = { type: "Bearer", credentials_file: options.metricsTokenFile };
  } else {
    delete job.authorization;
  }
  const config: PrometheusConfig = {
    global: {
      scrape_interval: interval,
      scrape_timeout: interval,
      evaluation_interval: options.evaluationInterval ?? interval,
    },
    rule_files: options.ruleFiles ?? ruleFiles(),
    scrape_configs: [job],
  };
  if (options.alertmanager) {
    config.alerting = {
      alertmanagers: [{ static_configs: [{ targets: [options.alertmanager] }] }],
    };
  }
  return stringify(config);
}

interface AlertmanagerRoute {
  receiver?: string;
  group_wait?: string;
  group_interval?: string;
  repeat_interval?: string;
  routes?: AlertmanagerRoute[];
  [key: string]: unknown;
}

interface AlertmanagerConfig {
  route: AlertmanagerRoute;
  receivers: {
    name: string;
    webhook_configs?: {
      url: string;
      http_config?: { authorization?: { type?: string; credentials_file?: string } };
      [key: string]: unknown;
    }[];
  }[];
  [key: string]: unknown;
}

/**
 * An Alertmanager config for a test, derived from the committed alertmanager.yml: the same
 * routes, inhibitions and receivers, with every webhook pointed at `webhookUrl` (vigil's
 * /v1/alertmanager/webhook) carrying the token in `webhookTokenFile`, and short timings.
 */
export function alertmanagerConfig(options: {
  webhookUrl: string;
  webhookTokenFile: string;
  groupWait?: string;
  groupInterval?: string;
  repeatInterval?: string;
}): string {
  const config = parse(
    Deno.readTextFileSync(repoPath(ALERTMANAGER_CONFIG)),
  ) as AlertmanagerConfig;
  const shorten = (route: AlertmanagerRoute) => {
    route.group_wait = options.groupWait ?? "1s";
    route.group_interval = options.groupInterval ?? "1s";
    route.repeat_interval = options.repeatInterval ?? "1m";
    for (const child of route.routes ?? []) shorten(child);
  };
  shorten(config.route);
  for (const receiver of config.receivers) {
    for (const webhook of receiver.webhook_configs ?? []) {
      webhook.url = options.webhookUrl;
      webhook.http_config = {
        ...webhook.http_config,
        authorization: { type: "Bearer", credentials_file: options.webhookTokenFile },
      };
    }
  }
  return stringify(config);
}
