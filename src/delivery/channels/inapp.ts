/**
 * In-app channel: a `notifications` row the user can list and mark read. The row is unique by
 * delivery id, in the database that holds the outbox, so a re-send can never show it twice.
 */
import type { Sql } from "../../db/database.ts";
import type { Delivery, Sender, SendResult } from "../types.ts";

export function inappSender(sql: Sql, clock: { now(): Date }): Sender {
  const sendMany = async (deliveries: Delivery[]): Promise<SendResult[]> => {
    const rows = deliveries.map((d) => ({
      user_id: d.user_id,
      alert_id: d.alert_id,
      delivery_id: d.id,
      title: d.payload.title,
      message: d.payload.message,
    }));
    await sql`
      insert into notifications (user_id, alert_id, delivery_id, title, message, created_at)
      select r.user_id, r.alert_id, r.delivery_id, r.title, r.message, ${clock.now()}
      from jsonb_to_recordset(${sql.json(rows)})
        as r(user_id uuid, alert_id uuid, delivery_id uuid, title text, message text)
      on conflict (delivery_id) do nothing`;
    return deliveries.map((): SendResult => ({ outcome: "delivered" }));
  };
  return {
    channel: "inapp",
    status: () => ({ status: "up" }),
    sendMany,
    send: async (delivery) => (await sendMany([delivery]))[0],
  };
}
