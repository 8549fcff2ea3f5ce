/**
 * What a user's policy decides for one notification of an alert: its channels, the repeat
 * interval, and when it is due (now, or the next opening of its severity's time window).
 *
 * - Channels: an alert whose channels were set explicitly (`channels_from_policy` false — every
 *   alert created with `channels`) uses them all. Otherwise the policy chooses, for the alert's
 *   severity, among the channels the alert has configured: `"all"` of them, or those of its list
 *   that the alert has (a channel needs the alert's configuration — email on, a webhook URL, a
 *   Slack URL, a PagerDuty key — to be usable; one the alert lacks is skipped). When none is left,
 *   the notification goes in-app, so a policy never silently drops one.
 * - Repeat interval: the alert's own, unless `repeat_interval_from_policy`.
 * - Due time: the severity's window applies to every alert of that severity, explicit channels
 *   or not (it says when the user may be disturbed, not how).
 */
import type { Alert } from "../alerts/store.ts";
import type { DeliveryIntent } from "../delivery/outbox.ts";
import type { Policy } from "./schema.ts";
import { nextWindowOpening, zonedWindow } from "./window.ts";

type Routed = Pick<
  Alert,
  "severity" | "channels_from_policy" | "repeat_interval_from_policy" | "repeat_interval_seconds"
>;

/** The channels one notification goes out on, from those the alert has configured. */
export function policyChannels(
  alert: Routed,
  configured: DeliveryIntent["channels"],
  policy: Policy,
): DeliveryIntent["channels"] {
  if (!alert.channels_from_policy) return configured;
  const choice = policy[alert.severity].channels;
  const chosen = choice === "all"
    ? configured
    : configured.filter((c) => choice.includes(c.channel));
  return chosen.length > 0 ? chosen : [{ channel: "inapp" }];
}

/** The repeat interval in seconds (0: none). */
export function repeatIntervalSeconds(alert: Routed, policy: Policy): number {
  return alert.repeat_interval_from_policy
    ? policy[alert.severity].repeat_interval_seconds
    : alert.repeat_interval_seconds;
}

/**
 * When a notification of this severity decided at `now` is due: null when now (no window, or
 * inside it), else the window's next opening.
 */
export function deferredUntil(policy: Policy, severity: Alert["severity"], now: Date): Date | null {
  const window = policy[severity].window;
  if (!window) return null;
  const opening = nextWindowOpening(now, zonedWindow(window, policy.time_zone));
  return opening.getTime() > now.getTime() ? opening : null;
}
