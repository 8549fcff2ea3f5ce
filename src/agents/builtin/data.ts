/** The `data` agent: pure, in-process helpers (`data.compare`, `data.pick`). */
import { z } from "zod";
import { canonicalJson, getPath } from "../../util/json.ts";
import { type Agent, CallerError, capability } from "../types.ts";

export const OPERATORS = [">", ">=", "<", "<=", "==", "!="] as const;
export type Operator = (typeof OPERATORS)[number];

const Scalar = z.union([z.number(), z.string(), z.boolean(), z.null()]);

/** Compares with an operator; ordering needs numbers, equality compares JSON values. */
export function compare(value: unknown, op: Operator, threshold: unknown): boolean {
  if (op === "==") return canonicalJson(value) === canonicalJson(threshold);
  if (op === "!=") return canonicalJson(value) !== canonicalJson(threshold);
  if (typeof value !== "number" || typeof threshold !== "number") {
    throw new CallerError(
      `${op} compares numbers; got ${JSON.stringify(value)} and ${JSON.stringify(threshold)}`,
    );
  }
  switch (op) {
    case ">":
      return value > threshold;
    case ">=":
      return value >= threshold;
    case "<":
      return value < threshold;
    case "<=":
      return value <= threshold;
  }
}

export function dataAgent(): Agent {
  const compareCapability = capability({
    name: "data.compare",
    description: "Compares a value with a threshold: > >= < <= (numbers) or == != (any JSON).",
    args: z.object({ value: Scalar, op: z.enum(OPERATORS), threshold: Scalar }).strict(),
    handler: (args) =>
      Promise.resolve({
        result: compare(args.value, args.op, args.threshold),
        value: args.value,
        threshold: args.threshold,
      }),
  });

  const pick = capability({
    name: "data.pick",
    description: "Returns the value at a dotted path (`a.b.0.c`) of a JSON value.",
    args: z.object({ value: z.unknown(), path: z.string().max(500) }).strict(),
    handler: (args) => {
      const { found, value } = getPath(args.value, args.path);
      if (!found) return Promise.reject(new CallerError(`nothing at path "${args.path}"`));
      return Promise.resolve(value);
    },
  });

  return {
    name: "data",
    kind: "builtin",
    timeoutMs: 5000,
    capabilities: [compareCapability, pick],
  };
}
