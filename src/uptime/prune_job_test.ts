import { assertEquals } from "../../tests/support/assert.ts";
import { HOUR, ManualClock } from "../../tests/support/clock.ts";
import { dbTest } from "../../tests/support/database.ts";
import { createUser } from "../users/store.ts";
import { HISTORY_RETENTION_DAYS, pruneUptimeJob } from "./prune_job.ts";
import { recordChecks } from "./store.ts";

const DAY = 24 * HOUR;

dbTest("uptime.prune: history past its retention goes, the rest stays", async (_t, db) => {
  const { sql } = db;
  const clock = new ManualClock("2026-06-01T12:00:00Z");
  const ago = (days: number) => new Date(clock.now().getTime() - days * DAY);
  const { user } = await createUser(sql, {
    email: "ann@example.com",
    name: "Ann",
    role: "user",
    now: ago(500),
  });
  const [alert] = await sql<{ id: string }[]>`
    insert into alerts (user_id, name, condition, next_eval_at, created_at, updated_at)
    values (${user.id}, 'a', '{}', ${ago(0)}, ${ago(500)}, ${ago(500)}) returning id`;
  const check = (days: number) => ({
    alert_id: alert.id,
    at: ago(days),
    ok: true,
    value: null,
    duration_ms: 10,
    error: null,
  });
  // Results 15 and 13 days old (retention 14), their rollups; a rollup past 400 days.
  await recordChecks(sql, [check(15)]);
  await recordChecks(sql, [check(13)]);
  await recordChecks(sql, [check(HISTORY_RETENTION_DAYS + 2)]);

  const episode = (started: number, ended: number | null) =>
    sql`insert into alert_episodes (id, alert_id, user_id, started_at, ended_at)
      values (${crypto.randomUUID()}, ${alert.id}, ${user.id}, ${ago(started)},
              ${ended === null ? null : ago(ended)}) returning id`;
  const [old] = await episode(450, 440);
  await episode(100, 95); // closed, within the history: the status page lists it
  const [open] = await episode(40, null);
  await sql`update alerts set episode_id = ${open.id} where id = ${alert.id}`;
  await sql`
    insert into alert_events (alert_id, episode_id, from_state, to_state, at)
    values (${alert.id}, ${old.id}, 'firing', 'ok', ${ago(440)})`;

  const traffic = (period: string, days: number) =>
    sql`insert into sla_traffic (period, bucket, route, requests, errors, duration_sum_seconds,
                                 duration_buckets)
        values (${period}, ${ago(days)}, '/v1/me', 1, 0, 0.01, '{1}')`;
  await traffic("minute", 3);
  await traffic("minute", 1);
  await traffic("hour", HISTORY_RETENTION_DAYS + 1);
  await traffic("hour", 30);

  assertEquals(await pruneUptimeJob(sql, 14, 1).run(clock.now()), {
    check_results: 2,
    // The hour and the day of the result from 402 days ago.
    rollups: 2,
    episodes: 1,
    sla_traffic: 2,
  });
  const left = await sql<{ at: Date }[]>`select at from check_results`;
  assertEquals(left.map((r) => r.at), [ago(13)]);
  assertEquals((await sql`select 1 from check_rollups`).length, 4, "the two recent results'");
  assertEquals((await sql`select 1 from alert_episodes`).length, 2);
  const [event] = await sql`select episode_id from alert_events`;
  assertEquals(event.episode_id, null, "the event stays, without its pruned episode");
  const kept = await sql`select period from sla_traffic order by period`;
  assertEquals(kept.map((r) => r.period), ["hour", "minute"]);
});
