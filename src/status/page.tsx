/**
 * The public status page, server-rendered with Hono's JSX: one HTML document with its style
 * inline, no script, no external resource (it works without JavaScript and offline), refreshed
 * by the browser every 60 s. States are text and an icon of their own shape, never colour alone;
 * every text colour has a contrast of at least 4.5:1 with its background.
 */
import { formatDuration } from "../util/duration.ts";
import { raw } from "hono/html";
import type { FC } from "hono/jsx";
import { formatMs, formatPercent, formatTime, LEVEL_LEGEND, uptimeLevel } from "./format.ts";
import {
  type AlertStatus,
  BAR_DAYS,
  type HourLatency,
  type Incident,
  type OverallState,
  type PublicAlert,
  SPARK_HOURS,
  type StatusData,
} from "./schema.ts";

/** Seconds between the browser's reloads of the page. */
export const REFRESH_SECONDS = 60;

// Text colours against their backgrounds (WCAG contrast): #1f2328 on #fff 15.8, on #f6f8fa 14.8;
// #57606a on #fff 6.4, on #f6f8fa 6.0; #0969da on #f6f8fa 4.9; status text on #fff: #116329 7.4,
// #7d4e00 7.1, #a40e26 7.9; banners: #116329 on #dafbe1 6.6, #7d4e00 on #fff8c5 6.6, #953800 on
// #fff1e5 6.7, #82071e on #ffebe9 9.2.
const STYLE = `
*{box-sizing:border-box}
html{color-scheme:light}
body{margin:0;background:#f6f8fa;color:#1f2328;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:56rem;margin:0 auto;padding:1.5rem 1rem 2rem}
a{color:#0969da}
h1{font-size:1.75rem;line-height:1.25;margin:0}
h2{font-size:1.25rem;line-height:1.3;margin:0 0 .75rem}
h3{font-size:1rem;margin:0}
.muted{color:#57606a}
.description{margin:.25rem 0 0}
.overall{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem 1rem;margin:1.25rem 0 1.5rem;padding:1rem 1.25rem;border:1px solid;border-radius:6px}
.overall h2{display:flex;align-items:center;gap:.5rem;margin:0;font-size:1.25rem}
.overall p{margin:0;font-size:.875rem}
.overall-operational{background:#dafbe1;color:#116329;border-color:#116329}
.overall-degraded{background:#fff8c5;color:#7d4e00;border-color:#7d4e00}
.overall-partial_outage{background:#fff1e5;color:#953800;border-color:#953800}
.overall-major_outage{background:#ffebe9;color:#82071e;border-color:#82071e}
section.block{margin:0 0 1.5rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px}
ul.alerts,ul.incidents,ol.incidents{list-style:none;margin:0;padding:0}
li.alert,li.incident{padding:1rem 1.25rem;border-top:1px solid #d0d7de}
li.alert:first-child,li.incident:first-child{border-top:0}
.empty{margin:0;padding:1rem 1.25rem;background:#fff;border:1px solid #d0d7de;border-radius:6px;color:#57606a}
.alert-head{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:.25rem 1rem}
.state{display:inline-flex;align-items:center;gap:.375rem;margin:0;font-weight:600}
.s-operational{color:#116329}.s-degraded{color:#7d4e00}.s-down{color:#a40e26}.s-unknown{color:#57606a}
svg.icon{width:1.125em;height:1.125em;flex:none}
svg.bar{display:block;width:100%;height:2rem;margin-top:.75rem}
.day-good{fill:#1f883d}.day-fair{fill:#bf8700}.day-poor{fill:#e16f24}.day-bad{fill:#cf222e}.day-none{fill:#d0d7de}
.axis{display:flex;justify-content:space-between;gap:1rem;margin:.25rem 0 0;font-size:.8125rem;color:#57606a}
.axis strong{color:#1f2328}
.latency{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem .75rem;margin:.5rem 0 0;font-size:.8125rem;color:#57606a}
svg.spark{width:15rem;height:2.5rem;flex:none;background:#f6f8fa;border-radius:4px}
svg.spark polyline{fill:none;stroke:#0969da;stroke-width:1.5;stroke-linejoin:round}
svg.spark circle{fill:#0969da}
.incident p{margin:0}
.incident .what{display:flex;align-items:center;gap:.375rem;font-weight:600}
.legend{margin:0 0 1.5rem;font-size:.875rem}
.legend h2{font-size:1rem;margin:0 0 .5rem}
.legend ul{display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;list-style:none;margin:0;padding:0}
.swatch{display:inline-block;width:.875rem;height:.875rem;margin-right:.375rem;border-radius:2px;vertical-align:-.125em}
.sw-good{background:#1f883d}.sw-fair{background:#bf8700}.sw-poor{background:#e16f24}.sw-bad{background:#cf222e}.sw-none{background:#d0d7de}
footer{margin-top:2rem;font-size:.875rem;color:#57606a}
footer p{margin:.25rem 0}
code{font-size:.8125rem}
`;

const ICONS: Record<AlertStatus, string> = {
  // A circle with a tick.
  operational: "M8 0a8 8 0 1 1 0 16A8 8 0 0 1 8 0z",
  // A triangle.
  degraded: "M8 .5l7.8 14.5H.2z",
  // An octagon (a stop sign).
  down: "M4.7 0h6.6L16 4.7v6.6L11.3 16H4.7L0 11.3V4.7z",
  // A diamond.
  unknown: "M8 0l8 8-8 8-8-8z",
};

const MARKS: Record<AlertStatus, string> = {
  operational: "M4.4 8.3l2.4 2.4 4.8-5.2",
  degraded: "M8 5.5v4.2M8 11.6v1.2",
  down: "M5.4 5.4l5.2 5.2M10.6 5.4l-5.2 5.2",
  unknown: "M6.2 6.3a1.9 1.9 0 1 1 2.6 1.8c-.5.3-.8.6-.8 1.2v.5M8 11.2v1.1",
};

const OVERALL_ICON: Record<OverallState, AlertStatus> = {
  operational: "operational",
  degraded: "degraded",
  partial_outage: "down",
  major_outage: "down",
};

/** The shape of a state (decorative: its text is always beside it). */
const Icon: FC<{ status: AlertStatus }> = ({ status }) => (
  <svg class={`icon icon-${status}`} viewBox="0 0 16 16" aria-hidden="true" focusable="false">
    <path d={ICONS[status]} fill="currentColor" />
    <path
      d={MARKS[status]}
      fill="none"
      stroke="#ffffff"
      stroke-width="1.8"
      stroke-linecap="round"
      stroke-linejoin="round"
    />
  </svg>
);

const Time: FC<{ iso: string }> = ({ iso }) => <time datetime={iso}>{formatTime(iso)}</time>;

const CELL = 3;
const GAP = 2;

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};
const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);

/**
 * The bar's cells, written as one string: 90 per alert are most of the page, and building them
 * as JSX nodes costs several times more (a page of 100 alerts is rendered for every cache period).
 */
function dayCells(alert: PublicAlert): string {
  let out = "";
  alert.days.forEach((d, i) => {
    const tip = d.uptime_percent === null
      ? `${d.date}: no data`
      : `${d.date}: ${formatPercent(d.uptime_percent)} uptime, ${d.evaluations} ${
        d.evaluations === 1 ? "evaluation" : "evaluations"
      }`;
    out += `<rect class="day day-${uptimeLevel(d.uptime_percent)}" x="${
      i * (CELL + GAP)
    }" width="${CELL}" height="32"><title>${escape(tip)}</title></rect>`;
  });
  return out;
}

/** 90 cells, one per UTC day, oldest first, each with its figures as a tooltip. */
const UptimeBar: FC<{ alert: PublicAlert }> = ({ alert }) => {
  const width = BAR_DAYS * (CELL + GAP) - GAP;
  const titleId = `bar-${alert.id}`;
  return (
    <svg
      class="bar"
      viewBox={`0 0 ${width} 32`}
      preserveAspectRatio="none"
      role="img"
      aria-labelledby={titleId}
    >
      <title id={titleId}>
        {`Uptime of ${alert.name} per day over the last ${BAR_DAYS} days: ${
          formatPercent(alert.uptime_90d_percent)
        } overall`}
      </title>
      {raw(dayCells(alert))}
    </svg>
  );
};

const SPARK_W = 240;
const SPARK_H = 40;
const SPARK_PAD = 4;

function sparkSummary(hours: readonly HourLatency[]): string {
  const values = hours.flatMap((h) => (h.latency_avg_ms === null ? [] : [h.latency_avg_ms]));
  if (values.length === 0) return "No latency data in the last 24 hours";
  const latest = [...hours].reverse().find((h) => h.latency_avg_ms !== null)!;
  return `Average check latency per hour over the last 24 hours: lowest ${
    formatMs(Math.min(...values))
  }, highest ${formatMs(Math.max(...values))}, latest ${formatMs(latest.latency_avg_ms!)} (${
    formatTime(latest.start)
  })`;
}

/** The 24 hourly averages as a line; hours without data break it. */
const Sparkline: FC<{ alert: PublicAlert }> = ({ alert }) => {
  const hours = alert.latency_24h;
  const max = Math.max(1, ...hours.map((h) => h.latency_avg_ms ?? 0));
  const step = (SPARK_W - 2 * SPARK_PAD) / (SPARK_HOURS - 1);
  const point = (i: number, ms: number) =>
    [
      Math.round((SPARK_PAD + i * step) * 10) / 10,
      Math.round((SPARK_H - SPARK_PAD - (ms / max) * (SPARK_H - 2 * SPARK_PAD)) * 10) / 10,
    ] as const;
  const runs: (readonly [number, number])[][] = [];
  let run: (readonly [number, number])[] = [];
  hours.forEach((h, i) => {
    if (h.latency_avg_ms === null) {
      if (run.length) runs.push(run);
      run = [];
    } else {
      run.push(point(i, h.latency_avg_ms));
    }
  });
  if (run.length) runs.push(run);
  const titleId = `spark-${alert.id}`;
  return (
    <svg
      class="spark"
      viewBox={`0 0 ${SPARK_W} ${SPARK_H}`}
      role="img"
      aria-labelledby={titleId}
    >
      <title id={titleId}>{sparkSummary(hours)}</title>
      {runs.map((r) =>
        r.length === 1
          ? <circle key={r[0][0]} cx={r[0][0]} cy={r[0][1]} r="2" />
          : <polyline key={r[0][0]} points={r.map(([x, y]) => `${x},${y}`).join(" ")} />
      )}
    </svg>
  );
};

const AlertItem: FC<{ alert: PublicAlert }> = ({ alert }) => (
  <li class="alert" data-alert-id={alert.id} data-status={alert.status}>
    <div class="alert-head">
      <h3>{alert.name}</h3>
      <p class={`state s-${alert.status}`}>
        <Icon status={alert.status} />
        <span class="state-text">{alert.status_text}</span>
      </p>
    </div>
    <UptimeBar alert={alert} />
    <p class="axis">
      <span>{BAR_DAYS} days ago</span>
      <span>
        <strong>{formatPercent(alert.uptime_90d_percent)}</strong>
        {alert.uptime_90d_percent === null ? "" : " uptime"}
      </span>
      <span>Today</span>
    </p>
    <p class="latency">
      <Sparkline alert={alert} />
      <span>
        {alert.latency_24h_avg_ms === null
          ? "Latency, last 24 h: no data"
          : `Latency, last 24 h: ${formatMs(alert.latency_24h_avg_ms)} on average`}
      </span>
    </p>
  </li>
);

const OngoingItem: FC<{ incident: Incident }> = ({ incident }) => (
  <li class="incident incident-ongoing">
    <p class="what s-down">
      <Icon status="down" />
      <span>{incident.alert_name}</span>
      <span class="muted">({incident.group})</span>
    </p>
    <p>
      Down since <Time iso={incident.started_at} />, for{" "}
      {formatDuration(incident.duration_seconds * 1000)}
    </p>
  </li>
);

const ResolvedItem: FC<{ incident: Incident }> = ({ incident }) => (
  <li class="incident incident-resolved">
    <p class="what">
      <span>{incident.alert_name}</span>
      <span class="muted">({incident.group})</span>
    </p>
    <p>
      <Time iso={incident.started_at} /> to <Time iso={incident.ended_at!} />
      <span class="muted">, lasted {formatDuration(incident.duration_seconds * 1000)}</span>
    </p>
  </li>
);

const Page: FC<{ data: StatusData }> = ({ data }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta http-equiv="refresh" content={String(REFRESH_SECONDS)} />
      <title>{data.title}</title>
      {/* No icon to fetch (a request for /favicon.ico would be a 404). */}
      <link rel="icon" href="data:," />
      {data.description ? <meta name="description" content={data.description} /> : ""}
      {/* Raw: the style's quotes must not become entities. */}
      <style dangerouslySetInnerHTML={{ __html: STYLE }} />
    </head>
    <body>
      <div class="wrap">
        <header>
          <h1>{data.title}</h1>
          {data.description ? <p class="description muted">{data.description}</p> : ""}
        </header>
        <main>
          <section
            class={`overall overall-${data.overall.state}`}
            aria-labelledby="overall"
            data-state={data.overall.state}
          >
            <h2 id="overall">
              <Icon status={OVERALL_ICON[data.overall.state]} />
              <span>{data.overall.text}</span>
            </h2>
            <p>
              Updated <Time iso={data.generated_at} />; this page refreshes every minute.
            </p>
          </section>

          <section class="block" aria-labelledby="ongoing" id="ongoing-incidents">
            <h2 id="ongoing">Ongoing incidents</h2>
            {data.incidents.ongoing.length === 0
              ? <p class="empty">No ongoing incidents.</p>
              : (
                <ul class="incidents card">
                  {data.incidents.ongoing.map((i) => (
                    <OngoingItem
                      key={i.started_at}
                      incident={i}
                    />
                  ))}
                </ul>
              )}
          </section>

          {data.groups.length === 0
            ? (
              <section class="block" aria-labelledby="no-services">
                <h2 id="no-services">Services</h2>
                <p class="empty">Nothing is published on this status page yet.</p>
              </section>
            )
            : data.groups.map((g, i) => (
              <section class="block group" aria-labelledby={`group-${i}`}>
                <h2 id={`group-${i}`}>{g.name}</h2>
                <ul class="alerts card">
                  {g.alerts.map((a) => <AlertItem key={a.id} alert={a} />)}
                </ul>
              </section>
            ))}

          <section class="legend" aria-labelledby="legend">
            <h2 id="legend">Uptime colours (one bar per UTC day)</h2>
            <ul>
              {LEVEL_LEGEND.map(([level, text]) => (
                <li>
                  <span class={`swatch sw-${level}`} aria-hidden="true"></span>
                  {text}
                </li>
              ))}
            </ul>
          </section>

          <section class="block" aria-labelledby="resolved" id="past-incidents">
            <h2 id="resolved">Past incidents</h2>
            {data.incidents.resolved.length === 0
              ? <p class="empty">No resolved incidents.</p>
              : (
                <ol class="incidents card">
                  {data.incidents.resolved.map((i) => (
                    <ResolvedItem key={`${i.alert_id} ${i.started_at}`} incident={i} />
                  ))}
                </ol>
              )}
          </section>
        </main>
        <footer>
          <p>
            Times are in UTC. The same data as JSON: <a href="/status.json">/status.json</a>.
          </p>
          <p>
            Badges: <code>/status/badge/health.svg</code>,{" "}
            <code>/status/badge/&lt;alert id&gt;/uptime.svg?window=30d</code>.
          </p>
        </footer>
      </div>
    </body>
  </html>
);

/** The page's HTML for `data` (what `GET /status` answers; benchmarks time it). */
export function renderStatusPage(data: StatusData): string {
  return `<!doctype html>${(<Page data={data} />).toString()}`;
}
