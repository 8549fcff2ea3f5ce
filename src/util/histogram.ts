/**
 * Histograms as stored in PostgreSQL (check rollups, SLA traffic): one count per bucket, bucket i
 * holding the observations in (bounds[i-1], bounds[i]], the last one everything above the last
 * bound (+Inf). Counts of the same bounds add up, so hourly rows make a day and replicas make a
 * total; quantiles are read from them exactly as Prometheus' histogram_quantile reads its
 * cumulative buckets, so that vigil and a PromQL query over the same observations agree.
 */

/** The index of the bucket `value` falls in (bounds ascending; bounds.length = +Inf). */
export function bucketIndex(bounds: readonly number[], value: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (value <= bounds[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Empty counts for `bounds` (one more than there are bounds: +Inf). */
export function emptyCounts(bounds: readonly number[]): number[] {
  return new Array(bounds.length + 1).fill(0);
}

/** Adds `more` into `into` (same bounds); returns `into`. */
export function addCounts(into: number[], more: readonly number[]): number[] {
  for (let i = 0; i < more.length; i++) into[i] = (into[i] ?? 0) + Number(more[i]);
  return into;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of the observations counted, as histogram_quantile computes it:
 * linear interpolation inside the bucket the rank falls in (from 0 for the first bucket), the
 * highest finite bound when it falls in +Inf. null when nothing was observed.
 */
export function quantile(q: number, bounds: readonly number[], counts: readonly number[]) {
  const total = counts.reduce((a, b) => a + Number(b), 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = Number(counts[i]);
    if (below + n >= rank && n > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const start = i === 0 ? 0 : bounds[i - 1];
      const end = bounds[i];
      if (i === 0 && end <= 0) return end;
      return start + (end - start) * ((rank - below) / n);
    }
    below += n;
  }
  return bounds[bounds.length - 1];
}
