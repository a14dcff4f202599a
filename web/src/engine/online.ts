// Offline handling. While the browser says it is offline the engine starts no request; a request
// that fails during an outage is not counted as a failed attempt (the server is not at fault) and
// is resent as soon as the browser is back online. A retry that is waiting out a backoff delay when
// the connection returns goes at once too: the delay was for a failure the outage likely caused,
// and making a user who just got their network back wait up to maxDelay would look like a hang.
// The state stays "uploading" throughout: the user did not pause anything.

import type { Clock } from "./clock";
import { anySignal } from "./signals";
import type { Connectivity } from "./types";

export class OnlineGate {
  private online: boolean;
  /** How many times the connection went away; a request that spans a change lost to an outage. */
  private outageCount = 0;
  /** Aborted (and replaced) each time the connection comes back, to wake waiters. */
  private reconnected = new AbortController();
  private readonly unsubscribe: () => void;
  private readonly clock: Clock;

  constructor(connectivity: Connectivity, clock: Clock) {
    this.clock = clock;
    this.online = connectivity.isOnline();
    this.unsubscribe = connectivity.subscribe((online) => this.update(online));
  }

  get isOnline(): boolean {
    return this.online;
  }

  get outages(): number {
    return this.outageCount;
  }

  /** Resolve once online; reject with the abort reason if `signal` aborts first. */
  async waitUntilOnline(signal: AbortSignal): Promise<void> {
    while (!this.online) {
      signal.throwIfAborted();
      await waitForAbort(anySignal(signal, this.reconnected.signal));
    }
    signal.throwIfAborted();
  }

  /** Sleep `ms`, cut short when the connection comes back; rejects if `signal` aborts. */
  async backoff(ms: number, signal: AbortSignal): Promise<void> {
    const wake = anySignal(signal, this.reconnected.signal);
    try {
      await this.clock.sleep(ms, wake.signal);
    } finally {
      wake.release();
    }
    signal.throwIfAborted();
  }

  dispose(): void {
    this.unsubscribe();
  }

  private update(online: boolean): void {
    if (online === this.online) return;
    this.online = online;
    if (!online) {
      this.outageCount += 1;
      return;
    }
    const woken = this.reconnected;
    this.reconnected = new AbortController();
    woken.abort();
  }
}

function waitForAbort(linked: { signal: AbortSignal; release: () => void }): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      linked.release();
      resolve();
    };
    if (linked.signal.aborted) done();
    else linked.signal.addEventListener("abort", done, { once: true });
  });
}
