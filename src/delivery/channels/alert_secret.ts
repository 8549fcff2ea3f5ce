/**
 * The sealed value a channel needs from its alert (a webhook's signing secret, a Slack webhook
 * URL, a PagerDuty routing key), read and opened at send time: no secret is ever copied into a
 * delivery, and a changed value reaches pending retries. A value that does not open fails the
 * attempt (retried like any failure): nothing is ever sent without it.
 */
import type { Sql } from "../../db/database.ts";
import type { Purpose, Secrets } from "../../security/secrets.ts";
import type { Channel, Delivery, SendResult } from "../types.ts";

export interface SecretField {
  channel: Channel;
  /** The key of the sealed value in `alerts.channels -> channel`. */
  field: string;
  purpose: Purpose;
  /** For errors: "webhook: cannot decrypt the signing secret". */
  label: string;
  secretName: string;
}

export async function alertSecret(
  sql: Sql,
  secrets: Secrets,
  delivery: Delivery,
  where: SecretField,
): Promise<{ value: string } | { failure: SendResult }> {
  const [alert] = delivery.alert_id
    ? await sql<{ sealed: string | null }[]>`
        select channels -> ${where.channel}::text ->> ${where.field}::text as sealed
        from alerts where id = ${delivery.alert_id}`
    : [];
  if (!alert?.sealed) {
    const error = `the alert or its ${where.label} channel is gone`;
    return { failure: { outcome: "failed", permanent: true, error } };
  }
  try {
    return { value: await secrets.open(alert.sealed, where.purpose) };
  } catch (error) {
    return {
      failure: {
        outcome: "failed",
        permanent: false,
        error: `${where.label}: cannot decrypt the ${where.secretName}: ${
          (error as Error).message
        }`,
      },
    };
  }
}
