/** When deliveries are retried, and how long a sender holds one. */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Wait before retry n+1 (index 0: from the first failure to the first retry). */
export const BACKOFF_MS = [5 * MINUTE, 30 * MINUTE, 2 * HOUR, 12 * HOUR, 24 * HOUR] as const;
export const MAX_RETRIES = BACKOFF_MS.length;
/** How long a sender holds a delivery; another sender takes it over after that. */
export const LEASE_MS = 2 * MINUTE;
/** A pending delivery older than this, and not leased, was abandoned by its sender. */
export const STALE_PENDING_MS = 2 * MINUTE;
