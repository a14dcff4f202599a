// Which failures are worth another attempt, and how long to wait before it.

import { HttpError, NetworkError } from "./types";

export interface BackoffOptions {
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Statuses that say "not now" rather than "no": timeouts, rate limits and server trouble. */
export function isTransient(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (!(error instanceof HttpError)) return false;
  return error.status === 408 || error.status === 429 || error.status >= 500;
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
