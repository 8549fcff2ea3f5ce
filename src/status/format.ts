/** How the status page and its badges write figures. */

export type UptimeLevel = "good" | "fair" | "poor" | "bad" | "none";

/** The colour band of an uptime (the bar's cells, the badges; the page's legend lists them). */
export function uptimeLevel(percent: number | null): UptimeLevel {
  if (percent === null) return "none";
  if (percent >= 99.9) return "good";
  if (percent >= 99) return "fair";
  if (percent >= 95) return "poor";
  return "bad";
}

export const LEVEL_LEGEND: readonly [UptimeLevel, string][] = [
  ["good", "99.9% or more"],
  ["fair", "99% to 99.9%"],
  ["poor", "95% to 99%"],
  ["bad", "below 95%"],
  ["none", "no data"],
];

/** "100%", "99.95%": rounded down, so that a day with a failure never reads 100%. */
export function formatPercent(percent: number | null): string {
  if (percent === null) return "no data";
  if (percent >= 100) return "100%";
  return `${(Math.floor(percent * 100) / 100).toFixed(2)}%`;
}

/** "2026-01-01 12:34 UTC" from an ISO timestamp. */
export function formatTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** "123 ms", "1.2 s". */
export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s` : `${Math.round(ms)} ms`;
}
