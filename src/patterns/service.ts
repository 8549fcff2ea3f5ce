/**
 * The pattern service: definitions validated against the live capabilities, stored versions,
 * and runs — inputs checked, executed by the orchestrator, persisted by a group writer: the runs
 * of concurrent callers share one INSERT and one commit, and a run is answered once committed.
 */
import type { RemoteAgents } from "../agents/remote.ts";
import type { AgentRuntime } from "../agents/runtime.ts";
import type { Clock } from "../clock.ts";
import type { Sql } from "../db/database.ts";
import { GroupWriter } from "../db/group_writer.ts";
import { fieldErrors, Problem } from "../http/problem.ts";
import { inputsSchema, type PatternDefinition } from "./definition.ts";
import type { Orchestrator, RunResult } from "./orchestrator.ts";
import {
  countPatterns,
  deletePattern,
  getPattern,
  insertPattern,
  insertRuns,
  listPatterns,
  type StoredPattern,
  updatePattern,
} from "./store.ts";
import { validateDefinition } from "./validate.ts";

export interface PatternServiceDeps {
  sql: Sql;
  clock: Clock;
  runtime: AgentRuntime;
  remote: RemoteAgents;
  orchestrator: Orchestrator;
  /** MAX_PATTERNS: creating one more is a 409. */
  maxPatterns?: number;
  /** Every batch of runs written (pattern_run_write_batch_size). */
  onRunBatch?: (size: number) => void;
}

/**
 * How long a run may use a definition read earlier. Runs skip a query; an update made through
 * another replica reaches this one's runs within this time (its own updates, at once). Every
 * run records the version it ran.
 */
export const DEFINITION_CACHE_MS = 2000;

/** The most run records (at their largest) one batch statement carries. */
const RUN_BATCH_BYTES = 64 * 1024 * 1024;

export class PatternService {
  #definitions = new Map<string, { pattern: StoredPattern; until: number }>();
  readonly #runs: GroupWriter<RunResult>;

  constructor(private readonly deps: PatternServiceDeps) {
    // Two batches in flight: enough to keep a commit going while the next one fills. At most 200
    // runs a batch, and no more than RUN_BATCH_BYTES of them at their largest (a run's record may
    // be up to PATTERN_MAX_RESULT_BYTES; the batch is one jsonb parameter, which PostgreSQL caps).
    const largest = deps.orchestrator.limits.resultBytes;
    this.#runs = new GroupWriter({
      writeBatch: (runs) => insertRuns(deps.sql, runs),
      maxBatch: Math.max(1, Math.min(200, Math.floor(RUN_BATCH_BYTES / largest))),
      concurrency: 2,
      onBatch: deps.onRunBatch,
    });
  }

  /** The current definition for a run: from the short-lived cache, or the database. */
  async #forRun(id: string): Promise<StoredPattern> {
    const now = this.deps.clock.now().getTime();
    const cached = this.#definitions.get(id);
    if (cached && cached.until > now) return cached.pattern;
    const pattern = await this.get(id);
    this.deps.orchestrator.initMetrics(pattern.definition);
    if (this.#definitions.size >= 1000) this.#definitions.clear();
    this.#definitions.set(id, { pattern, until: now + DEFINITION_CACHE_MS });
    return pattern;
  }

  /** Throws a 422 problem listing every problem of the definition. */
  async assertValid(def: PatternDefinition): Promise<void> {
    await this.deps.remote.refresh();
    const errors = validateDefinition(def, this.deps.runtime);
    if (errors.length > 0) {
      throw Problem.invalid(errors, `The pattern is not valid: ${errors.length} problem(s).`);
    }
  }

  async create(def: PatternDefinition): Promise<StoredPattern> {
    await this.assertValid(def);
    // Counted before the insert: two admins creating at once may pass the cap by one each.
    const max = this.deps.maxPatterns ?? Infinity;
    if (max !== Infinity && await countPatterns(this.deps.sql) >= max) {
      throw Problem.conflict(
        `There are already ${max} patterns, the most allowed (MAX_PATTERNS); delete one first.`,
      );
    }
    const stored = await insertPattern(this.deps.sql, def, 1, this.deps.clock.now());
    if (!stored) {
      throw Problem.conflict(
        `Pattern ${def.id} already exists; PUT /v1/patterns/${def.id} updates it.`,
      );
    }
    this.deps.orchestrator.initMetrics(def);
    return stored;
  }

  /** Every stored pattern's series start at zero (at start-up). */
  async initMetrics(): Promise<void> {
    for (const { definition } of await this.list()) this.deps.orchestrator.initMetrics(definition);
  }

  async update(def: PatternDefinition): Promise<StoredPattern> {
    await this.assertValid(def);
    const stored = await updatePattern(this.deps.sql, def, this.deps.clock.now());
    if (!stored) throw Problem.notFound(`There is no pattern ${def.id}.`);
    this.#definitions.delete(def.id);
    this.deps.orchestrator.initMetrics(def);
    return stored;
  }

  async get(id: string): Promise<StoredPattern> {
    const stored = await getPattern(this.deps.sql, id);
    if (!stored) throw Problem.notFound(`There is no pattern ${id}.`);
    return stored;
  }

  list(): Promise<StoredPattern[]> {
    return listPatterns(this.deps.sql);
  }

  async delete(id: string): Promise<void> {
    this.#definitions.delete(id);
    if (!await deletePattern(this.deps.sql, id)) {
      throw Problem.notFound(`There is no pattern ${id}.`);
    }
  }

  /**
   * Runs the current version of a pattern and records the run. Unknown pattern: 404; inputs
   * that do not match the declared ones: 422 naming each.
   */
  async run(
    id: string,
    rawInputs: unknown,
    context: { userId: string | null; requestId?: string },
  ): Promise<RunResult> {
    const { definition } = await this.#forRun(id);
    const parsed = inputsSchema(definition).safeParse(rawInputs ?? {});
    if (!parsed.success) throw Problem.invalid(fieldErrors(parsed.error, ["inputs"]));
    await this.deps.remote.refresh();
    const result = await this.deps.orchestrator.run({
      definition,
      inputs: parsed.data,
      userId: context.userId,
      requestId: context.requestId,
    });
    await this.#runs.write(result);
    return result;
  }
}
