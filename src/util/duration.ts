/** "2 h 5 min", "45 s", "1 d 3 h": how long something lasted, for people (seconds only below an hour). */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86_400), h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  const parts = [d && `${d} d`, h && `${h} h`, m && `${m} min`, !d && !h && sec && `${sec} s`]
    .filter(Boolean);
  return parts.length ? parts.join(" ") : "0 s";
}
