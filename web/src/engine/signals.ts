/** An AbortSignal that aborts when any of `signals` does, and a way to stop listening to them. */
export function anySignal(...signals: AbortSignal[]): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  const abort = () => controller.abort();
  for (const signal of signals) {
    if (signal.aborted) {
      controller.abort();
      break;
    }
    signal.addEventListener("abort", abort, { once: true });
  }
  // Long-lived signals (the engine's own) would otherwise collect one listener per sleep.
  const release = () => {
    for (const signal of signals) signal.removeEventListener("abort", abort);
  };
  return { signal: controller.signal, release };
}

/** The error a request stopped on purpose rejects with (what `fetch` and XHR wrappers use). */
export function abortError(): DOMException {
  return new DOMException("The request was stopped", "AbortError");
}

/**
 * `promise`, or a rejection with the abort reason as soon as `signal` aborts. The work behind
 * `promise` goes on (a hash in a worker cannot be stopped); only its result is no longer awaited.
 */
export function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
