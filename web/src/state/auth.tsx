// Who is signed in. Loaded once from GET /auth/me; the API client tells us when a refresh fails.

import { createContext, use, useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import * as api from "../api/client";
import type { User } from "../api/types";
import { claimEngine, resetEngine } from "./uploads";

export type AuthStatus = "loading" | "signedIn" | "signedOut" | "unreachable";

interface AuthValue {
  status: AuthStatus;
  user: User | null;
  /** Why the first check failed (status "unreachable"). */
  error: string | null;
  signIn(email: string, password: string): Promise<User>;
  signOut(): Promise<void>;
  /** Ask the server again who is signed in. */
  reload(): void;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<AuthStatus>("loading");
  const [user, setUser] = useState<User | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);

  const signedIn = useCallback((next: User) => {
    // A different account in this tab must not inherit the previous account's uploads.
    claimEngine(next.id);
    setUser(next);
    setError(null);
    setStatus("signedIn");
  }, []);

  const signedOut = useCallback(() => {
    setUser(null);
    setStatus("signedOut");
  }, []);

  useEffect(() => {
    let live = true;
    api
      .me()
      .then((found) => live && signedIn(found))
      .catch((err: unknown) => {
        if (!live) return;
        if (err instanceof api.ApiError && err.status === 401) return signedOut();
        setError(api.errorMessage(err));
        setStatus("unreachable");
      });
    return () => {
      live = false;
    };
  }, [attempt, signedIn, signedOut]);

  useEffect(() => api.onSessionEnded(signedOut), [signedOut]);

  const value = useMemo<AuthValue>(
    () => ({
      status,
      user,
      error,
      async signIn(email, password) {
        const found = await api.login({ email, password });
        signedIn(found);
        return found;
      },
      async signOut() {
        try {
          await api.logout();
        } catch (err) {
          // Already signed out on the server is fine; anything else leaves the cookies in place.
          if (!(err instanceof api.ApiError && err.status === 401)) throw err;
        }
        // Stop this account's uploads; their sessions stay resumable after the next sign-in.
        resetEngine();
        signedOut();
      },
      reload() {
        // A signed-in page stays on screen while the server answers; only other states show "loading".
        setStatus((current) => (current === "signedIn" ? current : "loading"));
        setAttempt((n) => n + 1);
      },
    }),
    [status, user, error, signedIn, signedOut],
  );

  return <AuthContext value={value}>{children}</AuthContext>;
}

export function useAuth(): AuthValue {
  const value = use(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}
