// How every request the engine makes is carried out: only while online, with one shared session
// refresh on 401, and with backoff retries for transient failures.

import { busyServerDelayMs, isTransient, retryDelayMs, type BackoffOptions } from "./backoff";
import { AttemptsExhaustedError, SessionEndedError } from "./failure";
import type { OnlineGate } from "./online";
import { HttpError, type Transport } from "./types";

export interface RetryOptions extends BackoffOptions {
  maxAttempts: number;
  /** Total Retry-After waiting (429/503) one request may do before those waits count as attempts. */
  maxBusyWaitMs: number;
}

export class RequestPolicy {
  private readonly transport: Pick<Transport, "refreshSession">;
  private readonly online: OnlineGate;
  private readonly options: RetryOptions;
  /** Counts completed refreshes, so a 401 to a request sent before the last one just replays. */
  private sessionGeneration = 0;
  private refreshing: Promise<void> | null = null;

  constructor(transport: Pick<Transport, "refreshSession">, online: OnlineGate, options: RetryOptions) {
    this.transport = transport;
    this.online = online;
    this.options = options;
  }

  /**
   * Run `request` until it succeeds. Transient failures are retried after a backoff, up to
   * maxAttempts; anything else is rethrown as is. Stopping (`signal`) is never a failed attempt,
   * and neither is waiting out a busy server's Retry-After, for up to maxBusyWaitMs in all.
   */
  async run<T>(request: () => Promise<T>, signal: AbortSignal): Promise<T> {
    let failures = 0;
    let busyWaitedMs = 0;
    for (;;) {
      await this.online.waitUntilOnline(signal);
      const outagesBefore = this.online.outages;
      try {
        return await this.withSession(request);
      } catch (error) {
        signal.throwIfAborted();
        if (!isTransient(error)) throw error;
        if (!this.online.isOnline || this.online.outages !== outagesBefore) continue;
        const busyMs = busyServerDelayMs(error);
        if (busyMs !== null && busyWaitedMs + busyMs <= this.options.maxBusyWaitMs) {
          busyWaitedMs += busyMs;
          await this.online.backoff(busyMs, signal);
          continue;
        }
        failures += 1;
        if (failures >= this.options.maxAttempts) throw new AttemptsExhaustedError(error, failures);
        await this.online.backoff(retryDelayMs(failures, error, this.options), signal);
      }
    }
  }

  /** Send `request`; on 401, renew the session (once, shared by everyone) and send it again. */
  private async withSession<T>(request: () => Promise<T>): Promise<T> {
    const generation = this.sessionGeneration;
    try {
      return await request();
    } catch (error) {
      if (!isUnauthorized(error)) throw error;
    }
    // A refresh that finished after this request was sent already covers it.
    if (generation === this.sessionGeneration) await this.refreshSession();
    try {
      return await request();
    } catch (error) {
      throw isUnauthorized(error) ? new SessionEndedError() : error;
    }
  }

  private refreshSession(): Promise<void> {
    this.refreshing ??= this.transport.refreshSession().then(
      () => {
        this.sessionGeneration += 1;
        this.refreshing = null;
      },
      () => {
        this.refreshing = null;
        throw new SessionEndedError();
      },
    );
    return this.refreshing;
  }
}

function isUnauthorized(error: unknown): boolean {
  return error instanceof HttpError && error.status === 401;
}
