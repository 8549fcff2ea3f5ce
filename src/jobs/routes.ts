/**
 * `/v1/jobs` (admin): the scheduled jobs of this replica, and running one now — for an operator
 * who has just fixed a receiver and wants the DLQ drained without waiting for the next minute.
 * A run is the same as a scheduled one: tracked by the drain, refused while stopping, counted.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { bearerAuth, createRouter, json, problems } from "../http/openapi.ts";
import { Problem } from "../http/problem.ts";
import { requireAdmin } from "../users/auth.ts";
import type { Drain } from "./drain.ts";
import { type Job, type JobDeps, runJob } from "./scheduler.ts";

const JobSchema = z.object({ name: z.string(), schedule: z.string() }).openapi("Job");

export function jobsRoutes(deps: JobDeps & { jobs: Job[]; drain: Drain }) {
  const app = createRouter();
  const byName = new Map(deps.jobs.map((j) => [j.name, j]));

  app.openapi(
    createRoute({
      method: "get",
      path: "/jobs",
      tags: ["jobs"],
      summary: "Scheduled jobs (admin)",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      responses: {
        200: json(z.object({ items: z.array(JobSchema) }), "The jobs"),
        ...problems(401, 403),
      },
    }),
    (c) => c.json({ items: deps.jobs.map(({ name, schedule }) => ({ name, schedule })) }, 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/jobs/{name}/run",
      tags: ["jobs"],
      summary: "Run a scheduled job now, on this replica (admin)",
      security: bearerAuth,
      middleware: [requireAdmin] as const,
      request: { params: z.object({ name: z.string().min(1).max(100) }) },
      responses: {
        200: json(
          z.object({
            job: z.string(),
            status: z.enum(["success", "error"]),
            result: z.unknown().optional(),
            error: z.string().optional(),
          }),
          "The run's outcome",
        ),
        ...problems(401, 403, 404, 503),
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const job = byName.get(name);
      if (!job) {
        throw Problem.notFound(
          `There is no job ${name}; the jobs are ${[...byName.keys()].join(", ")}.`,
        );
      }
      if (deps.drain.stopping) throw new Problem(503, "vigil is stopping: no new job runs.");
      const run = await deps.drain.track(runJob(job, deps));
      return c.json({ job: name, ...run }, 200);
    },
  );

  return app;
}
