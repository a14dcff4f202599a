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
