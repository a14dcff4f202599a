// Small status pieces: loading, error and empty states, and the "server unreachable" banner.

import type { ReactNode } from "react";
import { useAuth } from "../state/auth";
import { buttonClass } from "../lib/styles";

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <div role="status" className="flex items-center gap-3 py-8 text-slate-600 dark:text-slate-400">
      <span
        aria-hidden="true"
        className="size-5 animate-spin rounded-full border-2 border-slate-300 border-t-sky-700 dark:border-slate-700 dark:border-t-sky-400"
      />
      {label}
    </div>
  );
}

export function ErrorNotice({ children, action }: { children: ReactNode; action?: ReactNode }) {
  return (
    <div
      role="alert"
      className="flex flex-wrap items-center justify-between gap-3 rounded-lg border border-red-300 bg-red-50 px-4 py-3 text-sm text-red-800 dark:border-red-800 dark:bg-red-950/60 dark:text-red-200"
    >
      <div>{children}</div>
      {action}
    </div>
  );
}

export function ServerUnreachable() {
  const { error, reload } = useAuth();
  return (
    <div className="mb-6">
      <ErrorNotice
        action={
          <button type="button" onClick={reload} className={buttonClass("secondary", "sm")}>
            Try again
          </button>
        }
      >
        {error ?? "Cannot reach the server"}. Check your connection, then try again.
      </ErrorNotice>
    </div>
  );
}
