/**
 * The observability stack end to end, with the real binaries: vigil on its own real PostgreSQL
 * cluster, a Prometheus scraping it (the committed scrape job and rules, short intervals) and an
 * Alertmanager whose webhook points at vigil.
 *
 * 1. Activity is driven through vigil's API (pattern runs, a failing agent whose breaker opens,
 *    deliveries that fail and are retried, 4xx answers, alerts through their lifecycle: an
 *    episode that fires, repeats and resolves, a pending alert, one in error, one a silence holds
 *    back), the Alert lifecycle panels show it, SLA & Uptime shows the one public alert (up, its
 *    uptime), and CircuitBreakerOpen travels through Alertmanager back into vigil as a
 *    notification.
 * 2. The database is stopped for a minute under traffic: scrapes keep succeeding, API requests
 *    get fast 503s that are counted, VigilDatabaseDown and HighErrorRate fire and reach
 *    Alertmanager without being inhibited, and the dashboards say so (Database up 0, errors,
 *    stale DLQ counts shown as No data) instead of showing a quiet system.
 * 3. The database comes back: vigil is ready again by itself and the delivery that was in flight
 *    when the database stopped is delivered.
 * 4. Every dashboard query runs through Prometheus over the whole test and must return data (a
 *    short, commented allow-list aside); every rule expression runs; the PostgreSQL panels' SQL
 *    runs as a role that may read only the `reporting` schema.
 */
import postgres from "postgres";
import { parse, stringify } from "yaml";
import { assert, assertEquals } from "./support/assert.ts";
import { freePort, startCluster, which } from "./support/cluster.ts";
import {
  alertmanagerConfig,
  dashboardQueries,
  postgresPanelQueries,
  prometheusConfig,
  ruleExpressions,
  ruleFiles,
} from "./support/observability.ts";
import { startVigil } from "./support/process.ts";
import { parseMetrics } from "./support/prometheus_text.ts";
import { serveLocal } from "./support/servers.ts";
import { alwaysMatches } from "./support/gauge.ts";
import { type Child, eventually, startChild as start, stopChild as stop } from "./support/child.ts";

const PROMETHEUS = "prometheus";
const ALERTMANAGER = "prometheus-alertmanager";
const missing = [PROMETHEUS, ALERTMANAGER, "initdb", "pg_ctl"].filter((b) => !which(b));

/** vigil's DB_TIMEOUT_MS: a request waits at most this long for the database. */
const DB_TIMEOUT_MS = 2000;
/** How long the database stays stopped, under traffic. */
const OUTAGE_SECONDS = 60;

/**
 * Dashboard queries that honestly return no series in this test, by
 * `dashboard / panel [refId]`, with the reason. Keep it tiny: every other query must show data.
 * A listed query that does return data fails the test (so the list cannot rot).
 */
const NO_DATA_IN_THIS_TEST: Record<string, string> = {};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

type Vector = { metric: Record<string, string>; value: [number, string] }[];
type Matrix = { metric: Record<string, string>; values: [number, string][] }[];
type PromResult<T> = { status: string; error?: string; data?: { resultType: string; result: T } };

interface PromAlert {
  labels: Record<string, string>;
  state: "pending" | "firing";
}

interface AmAlert {
  fingerprint: string;
  labels: Record<string, string>;
  status: { state: string; inhibitedBy: string[]; silencedBy: string[] };
}

/** The user Alertmanager's alerts go to (ALERTMANAGER_RECIPIENTS). */
const ONCALL = "oncall@example.com";

/** `alertname/severity`: HighErrorRate has a warning and a critical rule. */
const alertKey = (labels: Record<string, string>) => `${labels.alertname}/${labels.severity}`;

Deno.test({
  name: `observability e2e: Prometheus, Alertmanager, vigil and a database outage${
    missing.length ? ` (skipped: ${missing.join(", ")} not installed)` : ""
  }`,
  ignore: missing.length > 0,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    // One step failing makes the next ones meaningless (and slow): stop at the first.
    const step = async (name: string, fn: () => Promise<void> | void) => {
      if (!(await t.step(name, fn))) throw new Error(`step failed: ${name}`);
    };
    const cluster = await startCluster({ durable: false, prefix: "vigil-obs-e2e-pg-" });
    // The test's own connection, for what the API does not show (the recipient has no API key).
    const db = postgres(cluster.url, { max: 2, onnotice: () => {} });
    const notifications = async () =>
      await db<{ title: string; message: string }[]>`
        select n.title, n.message from notifications n join users u on u.id = n.user_id
        where lower(u.email) = ${ONCALL}`;
    const dir = await Deno.makeTempDir({ prefix: "vigil-obs-e2e-" });
    const metricsToken = "metrics-token-0123456789abcdef";
    const webhookToken = "webhook-token-0123456789abcdef";
    const adminKey = "vgl_" + "e".repeat(40);
    await Deno.writeTextFile(`${dir}/metrics_token`, metricsToken);
    await Deno.writeTextFile(`${dir}/webhook_token`, webhookToken);
    let alertmanager: Child | undefined;
    let prometheus: Child | undefined;

    try {
      let flaky = 0;
      await using agent = serveLocal(() => {
        flaky++;
        return new Response("down", { status: 500 });
      });
      // An agent whose answers the test sets: `gauge.read {name}` reads gauges[name].
      const gauges: Record<string, number> = {};
      await using gaugeAgent = serveLocal(async (req) => {
        const { args } = await req.json() as { args: { name: string } };
        return Response.json({ value: gauges[args.name] ?? 0 });
      });
      // A webhook receiver that fails until told otherwise: its delivery goes to the DLQ.
      let hookStatus = 503;
      await using hook = serveLocal(() => new Response(null, { status: hookStatus }));
      // A webhook receiver that holds its first request until released: a send in flight.
      const held = { ids: [] as string[], arrived: Promise.withResolvers<void>() };
      const release = Promise.withResolvers<void>();
      await using heldHook = serveLocal(async (req) => {
        held.ids.push(req.headers.get("webhook-id") ?? "");
        await req.body?.cancel();
        if (held.ids.length === 1) {
          held.arrived.resolve();
          await release.promise;
        }
        return new Response(null, { status: 200 });
      });
      // Disposed before heldHook (whose shutdown waits for its handlers), should a step fail.
      using _released = { [Symbol.dispose]: () => release.resolve() };

      await using vigil = await startVigil({
        DATABASE_URL: cluster.url,
        ADMIN_API_KEY: adminKey,
        METRICS_TOKEN: metricsToken,
        ALERTMANAGER_WEBHOOK_TOKEN: webhookToken,
        ALERTMANAGER_RECIPIENTS: ONCALL,
        CB_FAILURE_THRESHOLD: "2",
        CB_OPEN_SECONDS: "3600",
        DB_TIMEOUT_MS: String(DB_TIMEOUT_MS),
        AUTH_CACHE_SECONDS: "0", // every API request reads the database
        // Retries due a second after a failure, and leases that run out within the outage.
        DELIVERY_BACKOFF: "1s,1s,1s,1s,1s",
        DELIVERY_LEASE_SECONDS: "8",
        WEBHOOK_TIMEOUT_MS: "5000",
        RESEND_TIMEOUT_MS: "5000",
      });
      const amPort = freePort();
      const promPort = freePort();
      const am = `http://127.0.0.1:${amPort}`;
      const prom = `http://127.0.0.1:${promPort}`;
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
      alertmanager = start(ALERTMANAGER, [
        `--config.file=${dir}/alertmanager.yml`,
        `--storage.path=${dir}/am`,
        `--web.listen-address=127.0.0.1:${amPort}`,
        "--cluster.listen-address=",
      ]);
      prometheus = start(PROMETHEUS, [
        `--config.file=${dir}/prometheus.yml`,
        `--storage.tsdb.path=${dir}/prom`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ]);
      const testStart = Date.now() / 1000;

      const query = async (expr: string, at?: number): Promise<PromResult<Vector>> => {
        const time = at === undefined ? "" : `&time=${at}`;
        return await (await fetch(
          `${prom}/api/v1/query?query=${encodeURIComponent(expr)}${time}`,
        )).json();
      };
      const values = async (expr: string, at?: number): Promise<number[]> => {
        const r = await query(expr, at);
        assertEquals(r.status, "success", `${expr}: ${r.error}`);
        return r.data!.result.map((s) => Number(s.value[1]));
      };
      /** The highest value of each series of a range query over the test, by `key`. */
      const maxOverTest = async (
        expr: string,
        key: (labels: Record<string, string>) => string,
      ): Promise<Record<string, number>> => {
        const r: PromResult<Matrix> = await (await fetch(
          `${prom}/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${testStart}&end=${
            Date.now() / 1000
          }&step=1`,
        )).json();
        assertEquals(r.status, "success", `${expr}: ${r.error}`);
        return Object.fromEntries(r.data!.result.map((s) => [
          key(s.metric),
          Math.max(...s.values.map(([, v]) => Number(v)).filter((v) => !Number.isNaN(v))),
        ]));
      };
      /** The query of a dashboard panel (its first target), as dashboardQueries() gives it. */
      const panel = (dashboard: string, title: string) => {
        const found = dashboardQueries().filter((q) =>
          q.dashboard.endsWith(dashboard) && q.panel === title
        );
        assert(found.length > 0, `no panel ${dashboard} / ${title}`);
        return found[0].expr;
      };
      const promAlerts = async (): Promise<PromAlert[]> =>
        (await (await fetch(`${prom}/api/v1/alerts`)).json()).data.alerts;
      const amAlerts = async (): Promise<AmAlert[]> =>
        await (await fetch(`${am}/api/v2/alerts`)).json();

      await eventually(
        "Alertmanager",
        30,
        async () => (await fetch(`${am}/-/ready`)).ok || undefined,
      );
      await eventually(
        "Prometheus",
        30,
        async () => (await fetch(`${prom}/-/ready`)).ok || undefined,
      );

      const api = async (method: string, path: string, body?: unknown, key = adminKey) => {
        const started = performance.now();
        const res = await fetch(`${vigil.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(30_000),
        });
        const text = await res.text();
        let parsed;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = text;
        }
        return { status: res.status, body: parsed, ms: performance.now() - started };
      };
      const runRetryJob = () => api("POST", "/v1/jobs/alerts.retry/run", {});
      const scrape = async () =>
        parseMetrics(
          await (await fetch(`${vigil.url}/metrics`, {
            headers: { authorization: `Bearer ${metricsToken}` },
          })).text(),
        );
      const counted503 = async () =>
        (await scrape()).filter((s) =>
          s.name === "http_requests_total" && s.labels.status === "503"
        )
          .reduce((sum, s) => sum + s.value, 0);

      await step(
        "drive activity: runs, failures, a failing agent, deliveries, alert lifecycle, 4xx",
        async () => {
          // The Alertmanager recipient: vigil creates it at start (ALERTMANAGER_RECIPIENTS), or we do.
          const oncall = await api("POST", "/v1/users", { email: ONCALL, name: "On call" });
          assert([201, 409].includes(oncall.status), JSON.stringify(oncall.body));
          // Prometheus must see counters grow: a series born with its first increment, between two
          // scrapes, has no rate. So: after a first scrape, and in two rounds a scrape apart.
          await eventually("a first scrape", 30, async () => {
            return (await values('up{job="vigil"}'))[0] === 1 || undefined;
          });
          for (let i = 0; i < 3; i++) {
            if (i === 2) await sleep(1500);
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
          for (
            const channels of [{ inapp: true }, { inapp: false, webhook: { url: hook.url } }, {
              inapp: false,
              email: true,
            }]
          ) {
            const alert = await api("POST", "/v1/alerts", {
              name: `e2e ${Object.keys(channels).join("+")}`,
              condition: alwaysMatches,
              channels,
            });
            assertEquals(alert.status, 201);
            await api("POST", `/v1/alerts/${alert.body.id}/evaluate`, {});
          }
          const dlq = await api("GET", "/v1/dlq?state=pending");
          assertEquals(dlq.body.items.length, 2, "the webhook and the email wait in the DLQ");

          // The alert lifecycle, for the Alert lifecycle row: every state, every notification
          // kind, transitions both ways, and a notification held back by a silence.
          assertEquals(
            (await api("POST", "/v1/agents", {
              name: "gauge",
              url: gaugeAgent.url,
              capabilities: ["gauge.read"],
            })).status,
            201,
          );
          const lifecycleAlert = async (scenario: string, fields: Record<string, unknown> = {}) => {
            const res = await api("POST", "/v1/alerts", {
              name: `e2e lifecycle: ${scenario}`,
              condition: {
                capability: "gauge.read",
                args: { name: scenario },
                path: "value",
                op: ">",
                threshold: 10,
              },
              labels: { suite: "e2e", scenario },
              ...fields,
            });
            assertEquals(res.status, 201, JSON.stringify(res.body));
            return res.body.id as string;
          };
          /** One evaluation through the API, as `state: transitions; notifications`. */
          const evaluate = async (id: string) => {
            const res = await api("POST", `/v1/alerts/${id}/evaluate`, {});
            assertEquals(res.status, 200, JSON.stringify(res.body));
            const e = res.body as {
              state: string;
              transitions: { from: string; to: string }[];
              notifications: { kind: string; silenced: boolean }[];
            };
            return `${e.state}: ${e.transitions.map((t) => `${t.from} → ${t.to}`).join(", ")}; ${
              e.notifications.map((n) => n.kind + (n.silenced ? " (silenced)" : "")).join(", ")
            }`;
          };
          // An episode: it fires, repeats (repeat_interval_seconds 1) and resolves. Public: it is
          // the check of SLA & Uptime's public-check panels (check_up, check_uptime_ratio).
          gauges.episode = 20;
          const episode = await lifecycleAlert("episode", {
            repeat_interval_seconds: 1,
            public: true,
          });
          assertEquals(await evaluate(episode), "firing: ok → firing; firing");
          await sleep(1100);
          assertEquals(await evaluate(episode), "firing: ; repeat");
          gauges.episode = 0;
          assertEquals(await evaluate(episode), "ok: firing → ok; resolved");
          // Matching, but fewer than failure_threshold times: pending (and stays so).
          gauges.pending = 20;
          const pending = await lifecycleAlert("pending", { failure_threshold: 50 });
          assertEquals(await evaluate(pending), "pending: ok → pending; ");
          // Its capability cannot be called (flaky's breaker is open): error, and its message.
          const broken = await api("POST", "/v1/alerts", {
            name: "e2e lifecycle: error",
            condition: { capability: "flaky.call", args: {}, path: "r", op: ">", threshold: 0 },
            labels: { suite: "e2e", scenario: "error" },
            error_threshold: 1,
          });
          assertEquals(broken.status, 201, JSON.stringify(broken.body));
          assertEquals(await evaluate(broken.body.id), "error: ok → error; error");
          // A silence on a label of the alert: it fires, and its firing message is held back.
          const silence = await api("POST", "/v1/silences", {
            matchers: [{ name: "scenario", op: "=", value: "silenced" }],
            ends_at: new Date(Date.now() + 3600_000).toISOString(),
            comment: "e2e: hold the silenced scenario back",
          });
          assertEquals(silence.status, 201, JSON.stringify(silence.body));
          assertEquals(silence.body.state, "active");
          gauges.silenced = 20;
          const silenced = await lifecycleAlert("silenced");
          assertEquals(await evaluate(silenced), "firing: ok → firing; firing (silenced)");
          // The caller's mistakes, for the 4xx panel: unknown alert, bad key, invalid alert.
          assertEquals((await api("GET", `/v1/alerts/${crypto.randomUUID()}`)).status, 404);
          assertEquals(
            (await api("GET", "/v1/me", undefined, "vgl_" + "x".repeat(40))).status,
            401,
          );
          assertEquals((await api("POST", "/v1/alerts", { name: "" })).status, 422);
        },
      );

      await step("the retry job retries the DLQ: failed, then delivered", async () => {
        await sleep(1100); // DELIVERY_BACKOFF: due a second after the failure
        const first = await runRetryJob();
        assertEquals(first.status, 200, JSON.stringify(first.body));
        hookStatus = 200; // the receiver is fixed
        await eventually("the webhook retried and delivered", 20, async () => {
          await runRetryJob();
          const dlq = await api("GET", "/v1/dlq");
          const channels = (dlq.body.items as { channel: string }[]).map((i) => i.channel);
          return !channels.includes("webhook") || undefined;
        });
      });

      await step("Prometheus scrapes vigil with the metrics token", async () => {
        await eventually("a scrape that saw the activity", 30, async () => {
          const [value = 0] = await values('sum(pattern_executions_total{job="vigil"})');
          return value >= 7 ? value : undefined;
        });
        assertEquals(await values('up{job="vigil"}'), [1]);
        // Let rate() windows hold a few samples after the activity.
        await eventually("five more scrapes", 30, async () => {
          const [n = 0] = await values('count_over_time(up{job="vigil"}[1m])');
          return n >= 8 || undefined;
        });
      });

      await step("the Alert lifecycle row shows the lifecycle", async () => {
        const row = (title: string) => panel("Alert Delivery & DLQ", title);
        // Read from the database every 5 s: the three channel alerts and `silenced` fire.
        let states = "";
        await eventually("alerts_by_state in Prometheus", 30, async () => {
          const r = await query(row("Alerts by state"));
          states = (r.data?.result ?? []).map((s) => `${s.metric.state} ${s.value[1]}`).sort()
            .join(", ");
          return states === "error 1, firing 4, ok 1, pending 1" || undefined;
        }).catch((error) => {
          throw new Error(`${error.message}; last: ${states}`);
        });
        const rising = async (title: string, key: (l: Record<string, string>) => string) =>
          Object.entries(await maxOverTest(row(title), key)).filter(([, v]) => v > 0)
            .map(([k]) => k).sort();
        assertEquals(
          await rising("State transitions per minute", (l) => `${l.from} → ${l.to}`),
          ["firing → ok", "ok → error", "ok → firing", "ok → pending"],
        );
        assertEquals(
          await rising("Notifications by kind", (l) => l.kind),
          ["error", "firing", "repeat", "resolved"],
        );
        assertEquals(await rising("Notifications held back by silences", () => "held back"), [
          "held back",
        ]);
      });

      await step("SLA & Uptime shows the public check, and only it", async () => {
        const sla = (title: string) => panel("SLA & Uptime", title);
        // Read from the database every 5 s, like alerts_by_state: the one public alert, up again.
        let seen = "";
        await eventually("check_up of the public alert", 30, async () => {
          const r = await query(sla("Public checks: up over time"));
          seen = (r.data?.result ?? []).map((s) => `${s.metric.name} ${s.value[1]}`).join(", ");
          return seen === "e2e lifecycle: episode 1" || undefined;
        }).catch((error) => {
          throw new Error(`${error.message}; last: ${seen}`);
        });
        // Three evaluations: matched (firing), matched (repeat), not matched (resolved).
        const [uptime] = await values(sla("Public checks: uptime, 30 d"));
        assert(Math.abs(uptime - 1 / 3) < 1e-6, `30-day uptime ${uptime}`);
        assertEquals(await values(sla("Public checks firing")), [0]);
      });

      await step(
        "CircuitBreakerOpen fires, reaches Alertmanager, and arrives in vigil",
        async () => {
          await eventually("CircuitBreakerOpen firing in Prometheus", 60, async () => {
            const r = await values(
              'ALERTS{alertname="CircuitBreakerOpen", alertstate="firing", agent_name="flaky"}',
            );
            return r.length > 0 || undefined;
          });
          await eventually("the alert in Alertmanager", 30, async () => {
            return (await amAlerts()).some((a) => a.labels.alertname === "CircuitBreakerOpen") ||
              undefined;
          });
          const note = await eventually("the notification in vigil", 60, async () => {
            return (await notifications()).find((n) => n.title === "[FIRING] CircuitBreakerOpen");
          });
          assert(note.message.includes("flaky"), note.message);
        },
      );

      // ---------------------------------------------------------------- the database outage

      // An alert whose webhook delivery is in flight when the database stops.
      const inFlight = await api("POST", "/v1/alerts", {
        name: "e2e in flight",
        condition: alwaysMatches,
        channels: { inapp: false, webhook: { url: heldHook.url } },
      });
      assertEquals(inFlight.status, 201);
      const evaluation = api("POST", `/v1/alerts/${inFlight.body.id}/evaluate`, {});
      await held.arrived.promise;
      const before503 = await counted503();

      await cluster.pause();
      const outageStart = Date.now() / 1000;
      release.resolve(); // answered 200, but the outcome cannot be recorded now

      // Traffic for the whole outage: two requests at a time, every 200 ms.
      const answers: { status: number; ms: number; path: string }[] = [];
      const traffic = (async () => {
        while (Date.now() / 1000 < outageStart + OUTAGE_SECONDS) {
          const batch = await Promise.all(
            ["/v1/alerts", "/v1/me"].map(async (path) => ({ ...(await api("GET", path)), path })),
          );
          answers.push(...batch.map(({ status, ms, path }) => ({ status, ms, path })));
          await sleep(200);
        }
      })();
      // What Prometheus and Alertmanager say, every second of the outage.
      const firing = new Set<string>();
      const pendingOrFiring = new Set<string>();
      const inAlertmanager = new Map<string, AmAlert[]>();
      const watch = (async () => {
        while (Date.now() / 1000 < outageStart + OUTAGE_SECONDS) {
          for (const a of await promAlerts()) {
            pendingOrFiring.add(alertKey(a.labels));
            if (a.state === "firing") firing.add(alertKey(a.labels));
          }
          for (const a of await amAlerts()) {
            const seen = inAlertmanager.get(alertKey(a.labels)) ?? [];
            seen.push(a);
            inAlertmanager.set(alertKey(a.labels), seen);
          }
          await sleep(1000);
        }
      })();

      await step("while the database is stopped: fast 503s, counted", async () => {
        await traffic;
        await watch;
        const evaluated = await evaluation;
        assertEquals(evaluated.status, 503, JSON.stringify(evaluated.body));
        assert(answers.length > 100, `${answers.length} requests during the outage`);
        const wrong = answers.filter((a) => a.status !== 503);
        assertEquals(wrong, [], "every API request during the outage got a 503");
        const slow = answers.filter((a) => a.ms >= DB_TIMEOUT_MS + 1000);
        assertEquals(slow.map((a) => `${a.path} ${Math.round(a.ms)} ms`), []);
        const counted = (await counted503()) - before503;
        assert(counted >= answers.length, `${counted} 503s counted, ${answers.length} answered`);
        await eventually("the 503s in Prometheus", 10, async () => {
          const [n = 0] = await values('sum(http_requests_total{job="vigil", status="503"})');
          return n >= answers.length || undefined;
        });
      });

      await step("scrapes of vigil kept succeeding: up == 1 throughout", async () => {
        const window = `${OUTAGE_SECONDS - 2}s`;
        assertEquals(await values(`min_over_time(up{job="vigil"}[${window}])`), [1]);
        const [scrapes = 0] = await values(`count_over_time(up{job="vigil"}[${window}])`);
        assert(scrapes >= (OUTAGE_SECONDS - 2) * 0.8, `${scrapes} scrapes in ${window}`);
        assert(!pendingOrFiring.has("VigilDown/critical"), "VigilDown during a database outage");
      });

      await step("VigilDatabaseDown and HighErrorRate fire and are not inhibited", () => {
        for (
          const key of [
            "VigilDatabaseDown/critical",
            "HighErrorRate/critical",
            "AvailabilitySLOBurnRatePage/critical",
          ]
        ) {
          assert(firing.has(key), `${key} did not fire in Prometheus: ${[...firing]}`);
          const seen = inAlertmanager.get(key) ?? [];
          assert(seen.length > 0, `${key} never reached Alertmanager`);
          const muted = seen.filter((a) =>
            a.status.state !== "active" || a.status.inhibitedBy.length > 0 ||
            a.status.silencedBy.length > 0
          );
          assertEquals(muted.map((a) => a.status), [], `${key} was muted in Alertmanager`);
        }
        // The warning of the same name is inhibited, by the critical one only: the inhibition
        // that is meant to work does, so an empty inhibitedBy above means something.
        const critical = new Set(
          (inAlertmanager.get("HighErrorRate/critical") ?? []).map((a) => a.fingerprint),
        );
        const warning = inAlertmanager.get("HighErrorRate/warning") ?? [];
        assert(warning.length > 0, "the HighErrorRate warning never reached Alertmanager");
        for (const a of warning) {
          for (const by of a.status.inhibitedBy) assert(critical.has(by), `inhibited by ${by}`);
        }
        assertEquals(warning.at(-1)!.status.state, "suppressed", "the warning is not inhibited");
      });

      await step("the dashboards tell the truth during the outage", async () => {
        const at = Date.now() / 1000;
        const show = (d: string, p: string) => values(panel(d, p), at);
        assertEquals(await show("Database & process", "Database up"), [0]);
        assertEquals(await show("Database & process", "Database ping"), [], "no ping: no value");
        const [age] = await show("Database & process", "Age of database-read values");
        assert(age > 30, `database-read values ${age} s old`);
        assertEquals(await show("Alert Delivery & DLQ", "DLQ pending"), [], "stale: No data");
        assertEquals(await show("Alert Delivery & DLQ", "Alerts by state"), [], "stale: No data");
        assertEquals(await show("SLA & Uptime", "Public checks: up over time"), [], "stale");
        const [availability1h] = await show("SLA & Uptime", "Availability, 1 h");
        assert(availability1h < 99.5, `SLA & Uptime: availability ${availability1h}`);
        assertEquals(await show("API Overview", "Instances up"), [1]);
        const [rate] = await show("API Overview", "Request rate");
        assert(rate > 1, `request rate ${rate}`);
        const [errors] = await show("API Overview", "Error percentage (5xx)");
        assert(errors > 90, `error percentage ${errors}`);
        const [availability] = await show("API Overview", "Availability, last hour");
        assert(availability < 50, `availability ${availability}`);
      });

      await cluster.resume();

      await step(
        "after the restart: ready again, and the delivery in flight arrives",
        async () => {
          await eventually("/health/ready 200", 30, async () => {
            const res = await fetch(`${vigil.url}/health/ready`);
            await res.body?.cancel();
            return res.status === 200 || undefined;
          });
          assertEquals((await api("GET", "/v1/me")).status, 200);
          await eventually("vigil_database_up 1 in Prometheus", 30, async () => {
            const up = await values('vigil_database_up{job="vigil"}');
            return up[0] === 1 || undefined;
          });
          // The lease of the send cut off by the outage has run out: the retry job sends it again,
          // under the same idempotency key (webhook-id).
          const delivery = await eventually("the in-flight delivery delivered", 60, async () => {
            await runRetryJob();
            const list = await api("GET", `/v1/alerts/${inFlight.body.id}/deliveries`);
            const items = list.body.items as { id: string; status: string }[];
            assertEquals(items.length, 1);
            return items[0].status === "delivered" ? items[0] : undefined;
          });
          assert(held.ids.length >= 2, `${held.ids.length} sends`);
          assertEquals(new Set(held.ids), new Set([held.ids[0]]), "one webhook-id for every send");
          assertEquals(held.ids[0], delivery.id);
          // What Alertmanager could not hand to vigil during the outage arrives now.
          const note = await eventually("VigilDatabaseDown in vigil", 60, async () => {
            return (await notifications())
              .find((n) => /^\[(FIRING|RESOLVED)\] VigilDatabaseDown$/.test(n.title));
          });
          assert(note);
          await eventually("VigilDatabaseDown resolved in Prometheus", 30, async () => {
            const active = (await promAlerts()).filter((a) =>
              a.labels.alertname === "VigilDatabaseDown"
            );
            return active.length === 0 || undefined;
          });
          const unhandled = vigil.logs.filter((l) => String(l.msg).startsWith("unhandled error"));
          assertEquals(unhandled, [], "no request got a 500");
        },
      );

      // ---------------------------------------------------------------- every query

      await step("every dashboard query is valid and returns data", async () => {
        // As Grafana runs them: range queries over the dashboard's time range (the whole test).
        const end = Date.now() / 1000;
        const queries = dashboardQueries();
        assert(queries.length > 50, `${queries.length} dashboard queries`);
        const invalid: string[] = [];
        const noData: string[] = [];
        const allowedButHasData: string[] = [];
        for (const q of queries) {
          const name = `${q.dashboard} / ${q.panel} [${q.refId}]`;
          const r: PromResult<Matrix> = await (await fetch(
            `${prom}/api/v1/query_range?query=${
              encodeURIComponent(q.expr)
            }&start=${testStart}&end=${end}&step=2`,
          )).json();
          if (r.status !== "success") {
            invalid.push(`${name}: ${r.error}`);
            continue;
          }
          // A series of NaN only (a quantile of nothing) shows no more than no series.
          const hasData = (r.data?.result ?? []).some((s) =>
            s.values.some(([, v]) => !Number.isNaN(Number(v)))
          );
          if (name in NO_DATA_IN_THIS_TEST) {
            if (hasData) allowedButHasData.push(name);
          } else if (!hasData) noData.push(`${name}: ${q.expr}`);
        }
        assertEquals(invalid, []);
        assertEquals(noData, [], "queries with no series: a panel showing No data");
        assertEquals(allowedButHasData, [], "has data now: remove it from NO_DATA_IN_THIS_TEST");
      });

      await step("every rule expression is valid", async () => {
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

      await step(
        "the PostgreSQL panels' SQL runs as a role that reads only `reporting`",
        async () => {
          const reader = postgres(
            cluster.url.replace("postgres@", "grafana_e2e@"),
            { max: 1, onnotice: () => {} },
          );
          try {
            // What observability/compose/grafana-reader.sh grants Grafana's role, and no more.
            await db.unsafe(`
            create role grafana_e2e login;
            grant usage on schema reporting to grafana_e2e;
            grant select on all tables in schema reporting to grafana_e2e;`);
            await reader`select 1 from alert_dlq limit 1`.then(
              () => assert(false, "the reader may read alert_dlq"),
              (error) => assertEquals(error.code, "42501", String(error)), // insufficient_privilege
            );
            const panels = postgresPanelQueries();
            assertEquals(panels.length, 2);
            for (const p of panels) {
              // Grafana's raw SQL from the dashboard file, run verbatim: that is what is under test.
              const rows = await reader.unsafe(p.sql);
              assert(rows.length > 0, `${p.panel} returns the DLQ rows`);
            }
          } finally {
            await reader.end();
          }
        },
      );
    } finally {
      if (prometheus) await stop(prometheus);
      if (alertmanager) await stop(alertmanager);
      await db.end({ timeout: 1 });
      cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
