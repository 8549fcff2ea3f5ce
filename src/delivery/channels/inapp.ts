/** In-app channel: a `notifications` row the user can list and mark read (one per delivery). */
import type { Sql } from "../../db/database.ts";
import type { Sender } from "../types.ts";

export function inappSender(sql: Sql, clock: { now(): Date }): Sender {
  return {
    channel: "inapp",
    status: () => ({ status: "up" }),
    async send(delivery) {
      await sql`
        insert into notifications (user_id, alert_id, delivery_id, title, message, created_at)
        values (${delivery.user_id}, ${delivery.alert_id}, ${delivery.id},
                ${delivery.payload.title}, ${delivery.payload.message}, ${clock.now()})
        on conflict (delivery_id) do nothing`;
      return { ok: true };
    },
  };
}
