/**
 * Group commit: one writer per process gathers the records of concurrent callers and writes them
 * in one statement (one commit) — while a batch is being written, the next one fills up, and it
 * goes as soon as a slot is free (at most `concurrency` batches in flight, at most `maxBatch`
 * records each). A caller's `write()` resolves only once its record is committed, so durability
 * is what it was with one INSERT per record; under load many records share one commit's fsync.
 * An idle writer adds no wait: a lone record goes at once.
 *
 * A failed batch fails its callers, never silently: when the database is away each caller gets
 * that error (answered 503 `database unavailable`); when the batch was refused for what is in
 * it (a constraint), its records are written again one by one, so only the guilty one fails.
 */
import { type Context, context, ROOT_CONTEXT } from "@opentelemetry/api";
import { isDatabaseUnavailable } from "./connection_errors.ts";

interface Waiting<T> {
  record: T;
  resolve: () => void;
  reject: (error: unknown) => void;
  /** The caller's trace context: a batch of its record alone is written in it. */
  context: Context;
}

export interface GroupWriterOptions<T> {
  /** Writes a batch in one statement. */
  writeBatch: (records: T[]) => Promise<unknown>;
  maxBatch?: number;
  concurrency?: number;
  /** Every batch written, by its size (a histogram's observe). */
  onBatch?: (size: number) => void;
}

export class GroupWriter<T> {
  #queue: Waiting<T>[] = [];
  #inFlight = 0;
  readonly #maxBatch: number;
  readonly #concurrency: number;

  constructor(private readonly options: GroupWriterOptions<T>) {
    this.#maxBatch = options.maxBatch ?? 500;
    this.#concurrency = options.concurrency ?? 2;
  }

  /** Resolves once `record` is committed; rejects with why it is not. */
  write(record: T): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#queue.push({ record, resolve, reject, context: context.active() });
    this.#next();
    return promise;
  }

  #next(): void {
    while (this.#inFlight < this.#concurrency && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#inFlight++;
      // A statement shared by many callers belongs to no one's trace; a lone record's to its
      // caller's (not to whoever's batch ended before it started).
      const traced = batch.length === 1 ? batch[0].context : ROOT_CONTEXT;
      void context.with(traced, () => this.#write(batch)).finally(() => {
        this.#inFlight--;
        this.#next();
      });
    }
  }

  async #write(batch: Waiting<T>[]): Promise<void> {
    try {
      this.options.onBatch?.(batch.length);
      await this.options.writeBatch(batch.map((w) => w.record));
      for (const w of batch) w.resolve();
    } catch (error) {
      if (batch.length === 1 || isDatabaseUnavailable(error)) {
        for (const w of batch) w.reject(error);
        return;
      }
      // Refused for its content: each on its own, so that only the guilty ones fail.
      for (const w of batch) {
        try {
          await this.options.writeBatch([w.record]);
          w.resolve();
        } catch (own) {
          w.reject(own);
        }
      }
    }
  }
}
