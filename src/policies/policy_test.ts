/** The policy document (validation, defaults) and what it decides for an alert (routing.ts). */
import { assert, assertEquals } from "../../tests/support/assert.ts";
import type { DeliveryIntent } from "../delivery/outbox.ts";
import { deferredUntil, policyChannels, repeatIntervalSeconds } from "./routing.ts";
import { canonicalTimeZone, DEFAULT_POLICY, type Policy, PolicyInputSchema } from "./schema.ts";

Deno.test("policy: time zones are IANA zones, canonicalised; offsets and unknown names are not", () => {
  assertEquals(canonicalTimeZone("Europe/Berlin"), "Europe/Berlin");
  assertEquals(canonicalTimeZone("europe/berlin"), "Europe/Berlin");
  assertEquals(canonicalTimeZone("UTC"), "UTC");
  assertEquals(canonicalTimeZone("Mars/Olympus_Mons"), undefined);
  assertEquals(canonicalTimeZone("+01:00"), undefined);
  assertEquals(canonicalTimeZone("-0500"), undefined);
  assertEquals(canonicalTimeZone(""), undefined);
  assertEquals(canonicalTimeZone("Europe/" + "x".repeat(100)), undefined);
});

Deno.test("policy: severities left out take their defaults; a given one says everything", () => {
  const parsed = PolicyInputSchema.parse({
    time_zone: "Europe/Berlin",
    critical: { channels: ["pagerduty", "inapp"], repeat_interval_seconds: 600, window: null },
  });
  assertEquals(parsed, {
    time_zone: "Europe/Berlin",
    critical: { channels: ["pagerduty", "inapp"], repeat_interval_seconds: 600, window: null },
    warning: DEFAULT_POLICY.warning,
    info: DEFAULT_POLICY.info,
  });
  assertEquals(PolicyInputSchema.parse({}), DEFAULT_POLICY);
  const partial = PolicyInputSchema.safeParse({ warning: { channels: "all" } });
  assert(!partial.success);
  assertEquals(partial.error.issues.map((i) => i.path.join(".")).sort(), [
    "warning.repeat_interval_seconds",
    "warning.window",
  ]);
});

Deno.test("policy: every problem at once", () => {
  const result = PolicyInputSchema.safeParse({
    time_zone: "Mars/Olympus_Mons",
    critical: {
      channels: ["sms", "inapp", "inapp"],
      repeat_interval_seconds: -1,
      window: { days: ["mon", "funday"], from: "9:00", to: "24:01", time_zone: "+01:00" },
    },
    warning: { channels: [], repeat_interval_seconds: 60, window: null },
    info: {
      channels: "all",
      repeat_interval_seconds: 60,
      window: { days: ["mon", "mon"], from: "17:00", to: "09:00" },
    },
    extra: true,
  });
  assert(!result.success);
  const paths = result.error.issues.map((i) => i.path.join(".")).sort();
  assertEquals(paths, [
    "",
    "critical.channels",
    "critical.repeat_interval_seconds",
    "critical.window.days.1",
    "critical.window.from",
    "critical.window.time_zone",
    "critical.window.to",
    "info.window.days",
    "info.window.to",
    "time_zone",
    "warning.channels",
  ]);
});

const configured: DeliveryIntent["channels"] = [
  { channel: "inapp" },
  { channel: "email", extra: { recipient: "ann@example.com" } },
  { channel: "pagerduty" },
];
const alert = {
  severity: "warning" as const,
  channels_from_policy: true,
  repeat_interval_from_policy: true,
  repeat_interval_seconds: 86_400,
};
const withWarning = (warning: Partial<Policy["warning"]>): Policy => ({
  ...DEFAULT_POLICY,
  warning: { ...DEFAULT_POLICY.warning, ...warning },
});

Deno.test("policy: channels chosen among the configured ones, in-app when none is left", () => {
  assertEquals(policyChannels(alert, configured, DEFAULT_POLICY), configured, '"all"');
  assertEquals(
    policyChannels(alert, configured, withWarning({ channels: ["pagerduty", "slack"] })),
    [{ channel: "pagerduty" }],
    "slack is not configured on the alert: skipped",
  );
  assertEquals(
    policyChannels(alert, configured, withWarning({ channels: ["slack", "webhook"] })),
    [{ channel: "inapp" }],
    "none configured: in-app, never nothing",
  );
  assertEquals(
    policyChannels(alert, [{ channel: "email" }], withWarning({ channels: ["inapp"] })),
    [{ channel: "inapp" }],
    "in-app is always usable, even when the alert has it off",
  );
  assertEquals(
    policyChannels(
      { ...alert, channels_from_policy: false },
      configured,
      withWarning({ channels: ["slack"] }),
    ),
    configured,
    "explicit channels win",
  );
});

Deno.test("policy: the repeat interval and the due time", () => {
  assertEquals(repeatIntervalSeconds(alert, DEFAULT_POLICY), 7200);
  assertEquals(repeatIntervalSeconds({ ...alert, severity: "critical" }, DEFAULT_POLICY), 1800);
  assertEquals(repeatIntervalSeconds({ ...alert, severity: "info" }, DEFAULT_POLICY), 43_200);
  assertEquals(
    repeatIntervalSeconds({ ...alert, repeat_interval_from_policy: false }, DEFAULT_POLICY),
    86_400,
  );
  const saturday = new Date("2026-01-03T12:00:00Z");
  assertEquals(deferredUntil(DEFAULT_POLICY, "warning", saturday), null, "no window");
  assertEquals(
    deferredUntil(DEFAULT_POLICY, "info", saturday)?.toISOString(),
    "2026-01-05T09:00:00.000Z",
  );
  const berlin = { ...DEFAULT_POLICY, time_zone: "Europe/Berlin" };
  assertEquals(
    deferredUntil(berlin, "info", saturday)?.toISOString(),
    "2026-01-05T08:00:00.000Z",
    "the window is in the policy's zone",
  );
  const monday = new Date("2026-01-05T10:00:00Z");
  assertEquals(deferredUntil(DEFAULT_POLICY, "info", monday), null, "inside: at once");
});
