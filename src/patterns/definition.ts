/**
 * A pattern definition: declared inputs, ordered steps that call capabilities with templated
 * arguments and store each result under `as`, and templated outputs.
 */
import { z } from "@hono/zod-openapi";

export const INPUT_TYPES = ["string", "number", "integer", "boolean", "object", "array"] as const;
export type InputType = (typeof INPUT_TYPES)[number];

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const identifier = z.string().regex(IDENTIFIER, "must be an identifier (letters, digits and _)");

export const PatternIdSchema = z.string().regex(
  /^[a-z0-9][a-z0-9_.-]{0,63}$/,
  "must be 1-64 lowercase letters, digits, '.', '_' or '-'",
);

export const InputDeclSchema = z.object({
  type: z.enum(INPUT_TYPES),
  description: z.string().max(500).optional(),
  required: z.boolean().optional().openapi({
    description: "Defaults to true, unless a default is given",
  }),
  default: z.unknown().optional(),
}).strict().openapi("PatternInput");

export const StepSchema = z.object({
  capability: z.string().min(1).max(100).openapi({ example: "http.check" }),
  args: z.record(z.string(), z.unknown()).default({}).openapi({
    example: { url: "{{inputs.url}}" },
  }),
  as: identifier.openapi({ example: "check" }),
  timeout_ms: z.number().int().min(1).max(300_000).optional(),
  description: z.string().max(500).optional(),
}).strict().openapi("PatternStep");

export const PatternDefinitionSchema = z.object({
  id: PatternIdSchema.openapi({ example: "service-health" }),
  version: z.number().int().positive().optional().openapi({
    description: "Assigned by the server: 1 on creation, +1 on every update",
  }),
  description: z.string().max(2000).default(""),
  inputs: z.record(identifier, InputDeclSchema).default({}),
  steps: z.array(StepSchema).min(1, "a pattern needs at least one step").max(100),
  outputs: z.record(identifier, z.unknown()).default({}).openapi({
    example: { up: "{{check.ok}}" },
  }),
}).strict().openapi("PatternDefinition");

export type PatternDefinition = z.output<typeof PatternDefinitionSchema>;
export type InputDecl = z.output<typeof InputDeclSchema>;

const TYPE_SCHEMAS: Record<InputType, z.ZodType> = {
  string: z.string(),
  number: z.number(),
  integer: z.number().int(),
  boolean: z.boolean(),
  object: z.record(z.string(), z.unknown()),
  array: z.array(z.unknown()),
};

export function isRequired(decl: InputDecl): boolean {
  return decl.required ?? decl.default === undefined;
}

const compiled = new Map<string, z.ZodType<Record<string, unknown>>>();

/**
 * The zod schema of a pattern's inputs: declared names only, types checked, defaults applied.
 * Memoized by the declaration: building it (and zod's compile on first parse) costs far more
 * than the parse itself, and every run would otherwise pay for it.
 */
export function inputsSchema(
  def: Pick<PatternDefinition, "inputs">,
): z.ZodType<Record<string, unknown>> {
  const key = JSON.stringify(def.inputs);
  let schema = compiled.get(key);
  if (!schema) {
    if (compiled.size >= 1000) compiled.delete(compiled.keys().next().value!);
    schema = buildInputsSchema(def);
    compiled.set(key, schema);
  }
  return schema;
}

function buildInputsSchema(
  def: Pick<PatternDefinition, "inputs">,
): z.ZodType<Record<string, unknown>> {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, decl] of Object.entries(def.inputs)) {
    const base = TYPE_SCHEMAS[decl.type];
    shape[name] = decl.default !== undefined
      ? base.default(decl.default)
      : isRequired(decl)
      ? base
      : base.optional();
  }
  return z.object(shape).strict() as unknown as z.ZodType<Record<string, unknown>>;
}

export function matchesType(value: unknown, type: InputType): boolean {
  return TYPE_SCHEMAS[type].safeParse(value).success;
}
