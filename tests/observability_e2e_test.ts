/**
 * The observability stack end to end, with the real binaries: vigil on real PostgreSQL, a
 * Prometheus scraping it (the committed scrape job and rules, short intervals) and an
 * Alertmanager whose webhook points at vigil. Activity is driven through vigil's API; then
 * every dashboard query and every rule expression runs through Prometheus's HTTP API, and an
 * agent made to fail opens its breaker until CircuitBreakerOpen reaches a recipient in vigil.
 */
import { parse, stringify } from "yaml";
import { assert, assertEquals } from "./support/assert.ts";
import { freePort, which } from "./support/cluster.ts";
import { dbTest } from "./support/database.ts";
import {
  alertmanagerConfig,
  dashboardQueries,
  postgresPanelQueries,
  prometheusConfig,
  ruleExpressions,
  ruleFiles,
} from "./support/observability.ts";
import { startVigil } from "./support/process.ts";
import { serveLocal } from "./support/servers.ts";
import { alwaysMatches } from "./support/gauge.ts";

const PROMETHEUS = "prometheus";
const ALERTMANAGER = "prometheus-alertmanager";
const missing = [PROMETHEUS, ALERTMANAGER].filter((b) => !which(b));

/** Polls `check` until it returns a value, for at most `seconds` (external processes, not a clock). */
async function eventually<T>(
  what: string,
  seconds: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

function start(command: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(command, { args, stdout: "null", stderr: "piped" }).spawn();
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  await child.status;
  await child.stderr.cancel().catch(() => {});
}

/** Rule files with every `for` and group interval shortened, so that alerts fire in seconds. */
async function fastRules(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const file of ruleFiles()) {
    const doc = parse(await Deno.readTextFile(file)) as {
      groups: { interval?: string; rules: { for?: string }[] }[];
    };
    for (const group of doc.groups) {
      if (group.interval) group.interval = "1s";
      for (const rule of group.rules) if (rule.for) rule.for = "3s";
    }
    const copy = `${dir}/${file.split("/").pop()}`;
    await Deno.writeTextFile(copy, stringify(doc));
    files.push(copy);
  }
  return files;
}

type PromResult = {
  status: string;
  error?: string;
  data?: { resultType: string; result: unknown[] };
};

dbTest(
  `observability e2e: Prometheus, Alertmanager and vigil${
    missing.length ? ` (skipped: ${missing.join(", ")} not installed)` : ""
  }`,
  async (t, db) => {
    if (missing.length) return;
    const dir = await Deno.makeTempDir({ prefix: "vigil-obs-e2e-" });
    const metricsToken = "metrics-token-0123456789abcdef";
    const webhookToken = "webhook-token-0123456789abcdef";
    const adminKey = "vgl_" + "e".repeat(40);
    await Deno.writeTextFile(`${dir}/metrics_token`, metricsToken);
    await Deno.writeTextFile(`${dir}/webhook_token`, webhookToken);

    let flaky = 0;
    await using agent = serveLocal(() => {
      flaky++;
      return new Response("down", { status: 500 });
    });
    await using hook = serveLocal(() => new Response(null, { status: 503 }));

    await using vigil = await startVigil({
      DATABASE_URL: db.url,
      ADMIN_API_KEY: adminKey,
      METRICS_TOKEN: metricsToken,
      ALERTMANAGER_WEBHOOK_TOKEN: webhookToken,
      ALERTMANAGER_RECIPIENTS: "oncall@example.com",
      CB_FAILURE_THRESHOLD: "2",
      CB_OPEN_SECONDS: "3600",
    });
    const amPort = freePort();
    const promPort = freePort();
    await Deno.writeTextFile(
      `${dir}/alertmanager.yml`,
      alertmanagerConfig({
        webhookUrl: `${vigil.url}/v1/alertmanager/webhook`,
        webhookTokenFile: `${dir}/webhook_token`,
      }),
    );
    await Deno.writeTextFile(
      `${dir}/prometheus.yml`,
      prometheusConfig({
        vigil: `127.0.0.1:${vigil.port}`,
        alertmanager: `127.0.0.1:${amPort}`,
        metricsTokenFile: `${dir}/metrics_token`,
        ruleFiles: await fastRules(dir),
      }),
    );
    const alertmanager = start(ALERTMANAGER, [
      `--config.file=${dir}/alertmanager.yml`,
      `--storage.path=${dir}/am`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      "--cluster.listen-address=",
    ]);
    const prometheus = start(PROMETHEUS, [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/prom`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ]);
    const prom = `http://127.0.0.1:${promPort}`;
    const query = async (expr: string): Promise<PromResult> =>
      await (await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(expr)}`)).json();

    try {
      await eventually(
        "Alertmanager",
        30,
        async () => (await fetch(`http://127.0.0.1:${amPort}/-/ready`)).ok || undefined,
      );
      await eventually(
        "Prometheus",
        30,
        async () => (await fetch(`${prom}/-/ready`)).ok || undefined,
      );

      const api = async (method: string, path: string, body?: unknown, key = adminKey) => {
        const res = await fetch(`${vigil.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : undefined };
      };

      let oncallKey = "";
      await t.step("drive activity: runs, failures, a failing agent, deliveries", async () => {
        const oncall = await api("POST", "/v1/users", {
          email: "oncall@example.com",
          name: "On call",
        });
        assertEquals(oncall.status, 201);
        oncallKey = oncall.body.api_key.key;
        for (let i = 0; i < 3; i++) {
          const ok = await api("POST", "/v1/patterns/service-health/run", {
            inputs: { url: `${vigil.url}/health/live` },
          });
          assertEquals(ok.body.status, "success");
        }
        const failed = await api("POST", "/v1/patterns/service-health/run", {
          inputs: { url: "http://169.254.169.254/" },
        });
        assertEquals(failed.body.status, "error");
        assertEquals(
          (await api("POST", "/v1/agents", {
            name: "flaky",
            url: agent.url,
            capabilities: ["flaky.call"],
          })).status,
          201,
        );
        assertEquals(
          (await api("POST", "/v1/patterns", {
            id: "uses-flaky",
            steps: [{ capability: "flaky.call", args: {}, as: "r" }],
          })).status,
          201,
        );
        for (let i = 0; i < 3; i++) {
          await api("POST", "/v1/patterns/uses-flaky/run", { inputs: {} });
        }
        assertEquals(flaky, 2, "the third call was rejected by the open breaker");
        const always = alwaysMatches;
        for (
          const channels of [{ inapp: true }, { inapp: false, webhook: { url: hook.url } }, {
            inapp: false,
            email: true,
          }]
        ) {
          const alert = await api("POST", "/v1/alerts", {
            name: `e2e ${Object.keys(channels).join("+")}`,
            condition: always,
            channels,
          });
          assertEquals(alert.status, 201);
          await api("POST", `/v1/alerts/${alert.body.id}/evaluate`, {});
        }
        const dlq = await api("GET", "/v1/dlq?state=pending");
        assertEquals(dlq.body.items.length, 2, "the webhook and the email wait in the DLQ");
      });

      await t.step("Prometheus scrapes vigil with the metrics token", async () => {
        await eventually("a scrape that saw the activity", 30, async () => {
          const r = await query('sum(pattern_executions_total{job="vigil"})');
          const value = Number(
            (r.data?.result[0] as { value: [number, string] } | undefined)?.value[1] ?? 0,
          );
          return value >= 7 ? value : undefined;
        });
        const up = await query('up{job="vigil"}');
        assertEquals((up.data!.result[0] as { value: [number, string] }).value[1], "1");
        // Let rate() windows hold a few samples after the activity.
        await eventually("five more scrapes", 30, async () => {
          const r = await query('count_over_time(up{job="vigil"}[1m])');
          return Number(
                (r.data?.result[0] as { value: [number, string] } | undefined)?.value[1] ?? 0,
              ) >= 8 || undefined;
        });
      });

      await t.step("every dashboard query is valid and every panel has data", async () => {
        const queries = dashboardQueries();
        assert(queries.length > 30, `${queries.length} dashboard queries`);
        const invalid: string[] = [];
        const panels = new Map<string, { hasData: boolean; empty: string[] }>();
        for (const q of queries) {
          const r = await query(q.expr);
          const panel = `${q.dashboard} / ${q.panel}`;
          const seen = panels.get(panel) ?? { hasData: false, empty: [] };
          if (r.status !== "success") invalid.push(`${panel} [${q.refId}]: ${r.error}`);
          else if ((r.data?.result.length ?? 0) > 0) seen.hasData = true;
          else seen.empty.push(q.expr);
          panels.set(panel, seen);
        }
        assertEquals(invalid, []);
        // A panel shows data when any of its targets does.
        const noData = [...panels].filter(([, p]) => !p.hasData).map(([panel, p]) =>
          `${panel}: ${p.empty.join(" | ")}`
        );
        assertEquals(noData, []);
      });

      await t.step("every rule expression is valid", async () => {
        const invalid: string[] = [];
        for (const rule of ruleExpressions()) {
          const r = await query(rule.expr);
          if (r.status !== "success") invalid.push(`${rule.group}/${rule.name}: ${r.error}`);
        }
        assertEquals(invalid, []);
        const rules = await (await fetch(`${prom}/api/v1/rules`)).json();
        const unhealthy = rules.data.groups.flatMap((
          g: { rules: { name: string; health: string; lastError?: string }[] },
        ) => g.rules.filter((r) => r.health === "err").map((r) => `${r.name}: ${r.lastError}`));
        assertEquals(unhealthy, []);
      });

      await t.step("the DLQ table panel's SQL runs on vigil's database", async () => {
        const panels = postgresPanelQueries();
        assert(panels.length > 0);
        for (const p of panels) {
          // Grafana's raw SQL from the dashboard file, run verbatim: that is what is under test.
          const rows = await db.sql.unsafe(p.sql);
          assert(rows.length > 0, `${p.panel} returns the DLQ rows`);
        }
      });

      await t.step(
        "CircuitBreakerOpen fires, reaches Alertmanager, and arrives in vigil",
        async () => {
          await eventually("CircuitBreakerOpen firing in Prometheus", 60, async () => {
            const r = await query(
              'ALERTS{alertname="CircuitBreakerOpen", alertstate="firing", agent_name="flaky"}',
            );
            return (r.data?.result.length ?? 0) > 0 || undefined;
          });
          await eventually("the alert in Alertmanager", 30, async () => {
            const alerts = await (await fetch(`http://127.0.0.1:${amPort}/api/v2/alerts`)).json();
            return alerts.some((a: { labels: Record<string, string> }) =>
              a.labels.alertname === "CircuitBreakerOpen"
            ) || undefined;
          });
          const note = await eventually("the notification in vigil", 60, async () => {
            const list = await api("GET", "/v1/notifications", undefined, oncallKey);
            return (list.body.items as { title: string; message: string }[])
              .find((n) => n.title === "[FIRING] CircuitBreakerOpen");
          });
          assert(note.message.includes("flaky"), note.message);
        },
      );
    } finally {
      await stop(prometheus);
      await stop(alertmanager);
      await Deno.remove(dir, { recursive: true });
    }
  },
  { realPostgresOnly: true },
);
