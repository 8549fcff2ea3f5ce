/** Agents provide capabilities: named, zod-validated calls returning JSON. */
import type { z } from "zod";

export interface CallContext {
  /** Aborted when the call times out or the caller gives up. */
  signal: AbortSignal;
  runId?: string;
  patternId?: string;
  requestId?: string;
}

export interface Capability<Args = unknown> {
  name: string;
  description: string;
  args: z.ZodType<Args>;
  handler: (args: Args, ctx: CallContext) => Promise<unknown>;
}

export interface Agent {
  name: string;
  kind: "builtin" | "remote";
  /** Base URL of a remote agent. */
  url?: string;
  /** Longest a call may take unless a step asks for less. */
  timeoutMs: number;
  capabilities: Capability[];
}

/** Declares a capability with its argument type inferred from the schema. */
export function capability<S extends z.ZodType>(def: {
  name: string;
  description: string;
  args: S;
  handler: (args: z.output<S>, ctx: CallContext) => Promise<unknown>;
}): Capability {
  return def as unknown as Capability;
}

/**
 * A call the caller got wrong (a refused target, a bad query, missing configuration): it fails
 * the step but says nothing about the agent's health, so the circuit breaker ignores it.
 */
export class CallerError extends Error {
  override name = "CallerError";
}
