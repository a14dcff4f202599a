// Which failures are worth another attempt, and how long to wait before it.

import { HttpError, NetworkError } from "./types";

export interface BackoffOptions {
  baseDelayMs: number;
  maxDelayMs: number;
}

/** HTTP 507: the server's disk is full, which no quick retry fixes. */
export const INSUFFICIENT_STORAGE = 507;

/** Statuses that say "not now" rather than "no": timeouts, rate limits and server trouble. */
export function isTransient(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (!(error instanceof HttpError)) return false;
  if (error.status === INSUFFICIENT_STORAGE) return false;
  return error.status === 408 || error.status === 429 || error.status >= 500;
}

/**
 * Milliseconds a 429 or 503 asked us to wait with Retry-After, or null when it named no wait.
 * Such a wait is the server pacing us, not a failure, so it is not counted as an attempt.
 */
export function busyServerDelayMs(error: unknown): number | null {
  const retryAfter = retryAfterMs(error);
  // "Retry-After: 0" paces nothing; not counting it could resend in a tight loop.
  return retryAfter !== null && retryAfter > 0 ? retryAfter : null;
}

/**
 * Milliseconds to wait after failed attempt number `failures` (1 for the first failure).
 *
 * A Retry-After on 429/503 is the server telling us exactly when it can take more, so it wins
 * over the cap. Otherwise: exponential backoff with full jitter, random(0, min(max, base * 2^k)),
 * which spreads the retries of many parallel chunks instead of having them return in lockstep.
 */
export function retryDelayMs(
  failures: number,
  error: unknown,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const retryAfter = retryAfterMs(error);
  if (retryAfter !== null) return retryAfter;
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (failures - 1));
  return Math.floor(random() * ceiling);
}

function retryAfterMs(error: unknown): number | null {
  if (!(error instanceof HttpError) || error.retryAfterSeconds === null) return null;
  if (error.status !== 429 && error.status !== 503) return null;
  return Math.max(0, error.retryAfterSeconds * 1000);
}
