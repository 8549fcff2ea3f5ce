/**
 * Batched deletes for the prune jobs: each batch one statement (`limit … for update skip locked`,
 * so that every replica running the job at the same minute takes rows of its own), repeated until
 * a batch comes back short. Short transactions, no table lock, no long-held row locks.
 */

/** Rows a prune job deletes per statement. */
export const PRUNE_BATCH = 1000;

/** Repeats a batched delete until a batch comes back short; returns the rows deleted. */
export async function deleteInBatches(
  batch: number,
  deleteBatch: () => PromiseLike<readonly unknown[]>,
): Promise<number> {
  let total = 0;
  while (true) {
    const n = (await deleteBatch()).length;
    total += n;
    if (n < batch) return total;
  }
}
