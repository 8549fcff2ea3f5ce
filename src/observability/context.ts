/**
 * The async context that carries the current span and the request's log fields across awaits:
 * OpenTelemetry's AsyncLocalStorage context manager and the W3C trace-context propagator,
 * installed once per process (they are process-wide in the OpenTelemetry API).
 */
import { context, propagation } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

let installed = false;

export function installContext(): void {
  if (installed) return;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  installed = true;
}
