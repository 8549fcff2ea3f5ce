/** The agents built into vigil. */
import type { Config } from "../../config.ts";
import type { OutboundPolicy } from "../outbound.ts";
import type { Agent } from "../types.ts";
import { dataAgent } from "./data.ts";
import { httpAgent } from "./http.ts";
import { prometheusAgent } from "./prometheus.ts";

export function builtinAgents(
  config: Pick<Config, "PROMETHEUS_URL">,
  policy: OutboundPolicy,
): Agent[] {
  // Prometheus is an operator-configured dependency, not a user-supplied target.
  return [
    httpAgent(policy),
    prometheusAgent(config.PROMETHEUS_URL, { allowPrivate: true }),
    dataAgent(),
  ];
}
