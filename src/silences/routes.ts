/**
 * `/v1/silences`: silences, like Alertmanager's. While a silence of its owner is active and its
 * matchers match an alert, the alert's notifications are held back (its transitions are still
 * recorded). Users see and manage their own silences; admins everyone's.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import {
  bearerAuth,
  createRouter,
  json,
  jsonBody,
  problems,
  Timestamp,
  UuidParam,
} from "../http/openapi.ts";
import { decodeCursor, page, pageOf, PageQuery } from "../http/pagination.ts";
import { Problem } from "../http/problem.ts";
import { ownerScope, targetUser } from "../users/auth.ts";
import { MATCHER_OPS, MatchersSchema } from "./matchers.ts";
import {
  expireSilence,
  getSilence,
  insertSilenceCapped,
  listSilences,
  MAX_SILENCES_PER_USER,
  type Silence,
  SILENCE_STATES,
  silenceState,
} from "./store.ts";

/** The longest a silence may last, from its (effective) start. */
export const MAX_SILENCE_DAYS = 365;
const DAY = 24 * 60 * 60 * 1000;

const SilenceSchema = z.object({
  id: z.uuid(),
  user_id: z.uuid(),
  matchers: z.array(z.object({ name: z.string(), op: z.enum(MATCHER_OPS), value: z.string() })),
  starts_at: Timestamp,
  ends_at: Timestamp,
  comment: z.string(),
  created_by: z.uuid().nullable().openapi({ description: "Who created it (null: user deleted)" }),
  created_at: Timestamp,
  state: z.enum(SILENCE_STATES).openapi({
    description: "At the time of the answer: `pending` before starts_at, `active` until " +
      "ends_at, then `expired`",
  }),
}).openapi("Silence");

const DateTime = z.iso.datetime({ offset: true, error: "must be an ISO 8601 date-time" });

/** The body of POST /v1/silences; its time rules read `clock`. */
function createSilenceSchema(clock: Clock) {
  return z.object({
    matchers: MatchersSchema,
    starts_at: DateTime.optional().openapi({
      description: "When it begins (default now; a time in the past means now)",
    }),
    ends_at: DateTime.openapi({
      description: `When it ends: in the future, after starts_at, at most ${MAX_SILENCE_DAYS} ` +
        "days after its start",
    }),
    comment: z.string().trim().min(1, "say why").max(1000),
    user_id: z.uuid().optional().openapi({
      description: "Admins only: create the silence for this user",
    }),
  }).strict().check(z.superRefine((body, ctx) => {
    const now = clock.now().getTime();
    const time = (v: unknown) =>
      typeof v === "string" && DateTime.safeParse(v).success ? new Date(v).getTime() : undefined;
    const ends = time(body.ends_at);
    if (ends === undefined) return;
    const given = body.starts_at === undefined ? now : time(body.starts_at);
    if (given === undefined) return;
    const start = Math.max(given, now);
    if (ends <= now) {
      ctx.addIssue({ code: "custom", path: ["ends_at"], message: "must be in the future" });
    } else if (ends <= given) {
      ctx.addIssue({ code: "custom", path: ["ends_at"], message: "must be after starts_at" });
    } else if (ends - start > MAX_SILENCE_DAYS * DAY) {
      ctx.addIssue({
        code: "custom",
        path: ["ends_at"],
        message: `must be at most ${MAX_SILENCE_DAYS} days after the start`,
      });
    }
    // Runs whatever else is wrong, so that a 422 lists every problem at once.
  }, { when: ({ value }) => typeof value === "object" && value !== null }))
    .openapi("CreateSilence");
}

export interface SilencesDeps {
  sql: Sql;
  clock: Clock;
  /** Unexpired silences per user (default MAX_SILENCES_PER_USER). */
  maxSilencesPerUser?: number;
}

export function silencesRoutes(deps: SilencesDeps) {
  const { sql, clock } = deps;
  const max = deps.maxSilencesPerUser ?? MAX_SILENCES_PER_USER;
  const app = createRouter();
  const withState = (s: Silence, now: Date) => ({ ...s, state: silenceState(s, now) });

  app.openapi(
    createRoute({
      method: "post",
      path: "/silences",
      tags: ["silences"],
      summary: "Create a silence",
      description: "Every matcher must match (`alert_id`, or a label: a missing one is the " +
        "empty string); at least one must not match the empty string. Regular expressions are " +
        "anchored, and refused (422) if they could backtrack catastrophically. At most " +
        `${MAX_SILENCES_PER_USER} unexpired silences per user (409).`,
      security: bearerAuth,
      request: jsonBody(createSilenceSchema(clock)),
      responses: { 201: json(SilenceSchema, "Created"), ...problems(400, 401, 403, 409, 422) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const p = c.get("principal");
      const userId = await targetUser(sql, p, body.user_id, "silences");
      const now = clock.now();
      const given = body.starts_at === undefined ? now : new Date(body.starts_at);
      const silence = await insertSilenceCapped(
        sql,
        {
          user_id: userId,
          matchers: body.matchers,
          starts_at: given < now ? now : given,
          ends_at: new Date(body.ends_at),
          comment: body.comment,
          created_by: p.userId,
        },
        now,
        max,
      );
      if (!silence) {
        throw Problem.conflict(
          `The user already has ${max} unexpired silences, the most allowed; expire one first.`,
        );
      }
      return c.json(withState(silence, now), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/silences",
      tags: ["silences"],
      summary: "Your silences, newest first (admins: everyone's, or one user's)",
      security: bearerAuth,
      request: {
        query: PageQuery.extend({
          state: z.enum(SILENCE_STATES).optional().openapi({
            param: { name: "state", in: "query" },
            description: "Only those in this state now",
          }),
          user_id: z.uuid().optional().openapi({ param: { name: "user_id", in: "query" } }),
        }),
      },
      responses: { 200: json(pageOf(SilenceSchema), "A page"), ...problems(400, 401, 403, 422) },
    }),
    async (c) => {
      const { limit, cursor, state, user_id } = c.req.valid("query");
      const p = c.get("principal");
      if (user_id !== undefined && p.role !== "admin" && user_id !== p.userId) {
        throw Problem.forbidden("Only admins list other users' silences.");
      }
      const userId = p.role === "admin" ? user_id : p.userId;
      const now = clock.now();
      const after = decodeCursor(cursor);
      const rows = await listSilences(sql, { userId, state, now, limit: limit + 1, after });
      const items = rows.map((s) => withState(s, now));
      return c.json(page(items, limit, (s) => [s.created_at, s.id]), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/silences/{id}",
      tags: ["silences"],
      summary: "Read a silence",
      security: bearerAuth,
      request: { params: UuidParam },
      responses: { 200: json(SilenceSchema, "The silence"), ...problems(401, 404, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const silence = await getSilence(sql, id, ownerScope(c.get("principal")));
      if (!silence) throw Problem.notFound(`You have no silence ${id}.`);
      return c.json(withState(silence, clock.now()), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/silences/{id}",
      tags: ["silences"],
      summary: "Expire a silence",
      description: "An active silence ends now (and stays, expired, for the record); a pending " +
        "one is deleted. An already expired silence is a 409.",
      security: bearerAuth,
      request: { params: UuidParam },
      responses: { 204: { description: "Expired (or deleted)" }, ...problems(401, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const result = await expireSilence(sql, id, ownerScope(c.get("principal")), clock.now());
      if (result.outcome === "not_found") throw Problem.notFound(`You have no silence ${id}.`);
      if (result.outcome === "already_expired") {
        throw Problem.conflict(
          `The silence ${id} already expired at ${result.silence.ends_at.toISOString()}.`,
        );
      }
      return c.body(null, 204);
    },
  );

  return app;
}
