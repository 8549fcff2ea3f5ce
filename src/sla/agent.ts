/** The `sla` agent: `sla.status` {window}, so an alert can watch vigil's own error budget. */
import { z } from "zod";
import { type Agent, capability } from "../agents/types.ts";
import { SLA_WINDOWS, type SlaReport } from "./status.ts";

export function slaAgent(report: SlaReport): Agent {
  return {
    name: "sla",
    kind: "builtin",
    timeoutMs: 10_000,
    capabilities: [
      capability({
        name: "sla.status",
        description: "vigil's own SLA over a window (1h, 24h, 7d, 30d), as /sla/status gives " +
          "it: availability, error_rate, latency, each with target, met and error_budget " +
          "(remaining_percent, burn_rate), e.g. path `availability.error_budget.burn_rate`.",
        args: z.object({ window: z.enum(SLA_WINDOWS).default("1h") }).strict(),
        handler: async (args) => JSON.parse(JSON.stringify(await report.window(args.window))),
      }),
    ],
  };
}
