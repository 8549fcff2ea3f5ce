/**
 * Validation of a pattern definition against the capabilities that exist: every problem is
 * reported at once (unknown capability, duplicate `as`, a template naming an undeclared input or
 * a later step, arguments that cannot match the capability's schema once filled in).
 */
import type { z } from "zod";
import type { AgentRuntime } from "../agents/runtime.ts";
import { type FieldError, formatPath } from "../http/problem.ts";
import { type InputType, matchesType, type PatternDefinition } from "./definition.ts";
import { findTemplates, type TemplateRef } from "./template.ts";

/** Stand-ins for inputs of a declared type, used to try arguments against a schema. */
const SAMPLES: Record<InputType, unknown> = {
  string: "sample",
  number: 1,
  integer: 1,
  boolean: true,
  object: {},
  array: [],
};

/**
 * Issue codes that mean "this type can never fit", as opposed to "this particular value does not
 * fit" (a format, a range, an enum), which a filled-in template may still satisfy.
 */
const TYPE_MISMATCH = new Set(["invalid_type", "invalid_union"]);

export function validateDefinition(def: PatternDefinition, runtime: AgentRuntime): FieldError[] {
  const errors: FieldError[] = [];
  const add = (path: (string | number)[], message: string) =>
    errors.push({ path: formatPath(path), message });

  for (const [name, decl] of Object.entries(def.inputs)) {
    if (decl.default !== undefined && !matchesType(decl.default, decl.type)) {
      add(["inputs", name, "default"], `must be of the declared type ${decl.type}`);
    }
  }

  const producedAt = new Map<string, number>();
  def.steps.forEach((step, i) => {
    if (step.as === "inputs") {
      add(["steps", i, "as"], `"inputs" is reserved for the pattern's inputs`);
    }
    const first = producedAt.get(step.as);
    if (first !== undefined) {
      add(["steps", i, "as"], `duplicate result name "${step.as}" (also steps.${first}.as)`);
    } else {
      producedAt.set(step.as, i);
    }
  });

  const checkRef = (ref: TemplateRef, base: (string | number)[], stepIndex: number | null) => {
    const at = [...base, ...ref.location];
    if (!ref.valid) return add(at, `{{${ref.expression}}} is not a valid reference`);
    const [root, second] = ref.path;
    if (root === "inputs") {
      if (second === undefined) {
        return add(at, "{{inputs}} must name an input, as in {{inputs.url}}");
      }
      if (!Object.hasOwn(def.inputs, second)) {
        add(at, `{{${ref.expression}}} names input "${second}", which is not declared`);
      }
      return;
    }
    const producer = producedAt.get(root);
    if (producer === undefined) {
      return add(
        at,
        `{{${ref.expression}}} names "${root}", which is neither an input nor a step result`,
      );
    }
    if (stepIndex !== null && producer >= stepIndex) {
      add(
        at,
        `{{${ref.expression}}} names "${root}", which only steps.${producer} produces (later)`,
      );
    }
  };

  def.steps.forEach((step, i) => {
    const refs = findTemplates(step.args);
    for (const ref of refs) checkRef(ref, ["steps", i, "args"], i);
    const resolved = runtime.resolve(step.capability);
    if (!resolved) {
      add(["steps", i, "capability"], `unknown capability "${step.capability}"`);
      return;
    }
    for (const issue of argsIssues(step.args, refs, def, resolved.capability.args)) {
      add(["steps", i, "args", ...issue.path], issue.message);
    }
  });

  for (const ref of findTemplates(def.outputs)) checkRef(ref, ["outputs"], null);
  return errors;
}

type Issue = { path: (string | number)[]; message: string };

/**
 * Tries the arguments against the capability's schema with each template replaced by a sample of
 * its type. Issues at a template whose type is unknown (a step result) are dropped; at one of a
 * known type, only type mismatches are kept.
 */
function argsIssues(
  args: Record<string, unknown>,
  refs: TemplateRef[],
  def: PatternDefinition,
  schema: z.ZodType,
): Issue[] {
  const sample = structuredClone(args) as Record<string, unknown>;
  const unknownAt: (string | number)[][] = [];
  const typedAt: (string | number)[][] = [];
  for (const ref of refs) {
    if (ref.location.length === 0) continue;
    const declared = ref.path[0] === "inputs" && ref.path.length === 2
      ? def.inputs[ref.path[1]]
      : undefined;
    if (!ref.whole) {
      typedAt.push(ref.location); // an interpolated string stays a string
    } else if (declared) {
      setAt(sample, ref.location, SAMPLES[declared.type]);
      typedAt.push(ref.location);
    } else {
      unknownAt.push(ref.location);
    }
  }
  const result = schema.safeParse(sample);
  if (result.success) return [];
  const under = (path: PropertyKey[], prefix: (string | number)[]) =>
    prefix.every((p, i) => String(path[i]) === String(p));
  return result.error.issues
    .filter((issue) => !unknownAt.some((loc) => under(issue.path, loc)))
    .filter((issue) =>
      !typedAt.some((loc) => under(issue.path, loc)) || TYPE_MISMATCH.has(issue.code)
    )
    .map((issue) => ({
      path: issue.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
      message: issue.message,
    }));
}

function setAt(root: Record<string, unknown>, location: (string | number)[], value: unknown): void {
  let node: Record<string | number, unknown> = root;
  for (const key of location.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[location.at(-1)!] = value;
}
