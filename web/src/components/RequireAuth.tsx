// Pages for signed-in users: visitors go to /signin, which sends them back here afterwards.

import type { ReactNode } from "react";
import { Navigate, useLocation } from "react-router";
import { useAuth } from "../state/auth";
import { Loading } from "./Feedback";

export function RequireAuth({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const location = useLocation();
  if (status === "loading") return <Loading label="Checking your sign-in…" />;
  // The banner in the layout explains; keep the page until the server answers again.
  if (status === "unreachable") return null;
  if (status === "signedOut") {
    return <Navigate to="/signin" replace state={{ from: location.pathname + location.search }} />;
  }
  return children;
}

/** A local path to return to after signing in; anything else (another origin, junk) is ignored. */
export function returnPath(state: unknown): string | null {
  const from = (state as { from?: unknown } | null)?.from;
  if (typeof from !== "string" || !from.startsWith("/") || from.startsWith("//") || from.startsWith("/signin")) {
    return null;
  }
  return from;
}
