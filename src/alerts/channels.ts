/** The channels one notification of an alert goes out on, each with what it alone needs. */
import type { DeliveryIntent } from "../delivery/outbox.ts";
import type { Alert } from "./store.ts";

export function deliveryChannels(alert: Alert, email: string): DeliveryIntent["channels"] {
  const channels: DeliveryIntent["channels"] = [];
  if (alert.channels.inapp) channels.push({ channel: "inapp" });
  if (alert.channels.email) channels.push({ channel: "email", extra: { recipient: email } });
  if (alert.channels.webhook) {
    channels.push({ channel: "webhook", extra: { webhook_url: alert.channels.webhook.url } });
  }
  // Their secrets (Slack's webhook URL, PagerDuty's routing key) stay sealed in the alert: the
  // sender reads and opens them at send time, so none is copied into deliveries or the DLQ.
  if (alert.channels.slack) channels.push({ channel: "slack" });
  if (alert.channels.pagerduty) channels.push({ channel: "pagerduty" });
  return channels;
}
