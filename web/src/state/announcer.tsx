// One pair of aria-live regions for the whole app: polite for progress of work, assertive for errors.

import { createContext, use, useCallback, useMemo, useRef, useState, type ReactNode } from "react";

type Politeness = "polite" | "assertive";

interface AnnounceValue {
  announce(message: string, politeness?: Politeness): void;
}

const AnnounceContext = createContext<AnnounceValue>({ announce: () => {} });

export function AnnouncerProvider({ children }: { children: ReactNode }) {
  const [polite, setPolite] = useState("");
  const [assertive, setAssertive] = useState("");
  const pending = useRef<Record<Politeness, { timer: number; text: string } | null>>({
    polite: null,
    assertive: null,
  });

  const announce = useCallback((message: string, politeness: Politeness = "polite") => {
    const set = politeness === "assertive" ? setAssertive : setPolite;
    const queued = pending.current[politeness];
    if (queued) {
      // Several changes at once (two uploads finishing together) are read as one sentence list.
      window.clearTimeout(queued.timer);
      message = `${queued.text}. ${message}`;
    }
    // Clear first so the same message said twice is read twice.
    set("");
    const timer = window.setTimeout(() => {
      pending.current[politeness] = null;
      set(message);
    }, 100);
    pending.current[politeness] = { timer, text: message };
  }, []);

  const value = useMemo(() => ({ announce }), [announce]);

  return (
    <AnnounceContext value={value}>
      {children}
      <div className="sr-only" data-testid="live-region">
        <div role="status" aria-live="polite" aria-atomic="true">
          {polite}
        </div>
        <div role="alert" aria-live="assertive" aria-atomic="true">
          {assertive}
        </div>
      </div>
    </AnnounceContext>
  );
}

export function useAnnounce(): AnnounceValue["announce"] {
  return use(AnnounceContext).announce;
}
