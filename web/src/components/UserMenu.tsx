// The account menu: a disclosure button (not an ARIA menu) so "Sign out" stays a plain button.
// Opening moves focus into the panel; Escape closes it and returns focus to the trigger.

import { useEffect, useId, useRef, useState } from "react";
import { Link, useNavigate } from "react-router";
import { errorMessage } from "../api/client";
import type { User } from "../api/types";
import { useAnnounce } from "../state/announcer";
import { useAuth } from "../state/auth";
import { buttonClass } from "../lib/styles";
import { ChevronDownIcon } from "./icons";

function initials(user: User): string {
  const source = user.name.trim() || user.email;
  const parts = source.split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? [parts[0]!, parts[parts.length - 1]!] : [source];
  return letters.map((part) => [...part][0]?.toUpperCase() ?? "").join("");
}

export function UserMenu({ user }: { user: User }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const panelId = useId();
  const rootRef = useRef<HTMLDivElement>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);
  const firstActionRef = useRef<HTMLAnchorElement>(null);
  const { signOut } = useAuth();
  const announce = useAnnounce();
  const navigate = useNavigate();

  useEffect(() => {
    if (!open) return;
    firstActionRef.current?.focus();
    const onPointerDown = (event: PointerEvent) => {
      if (!rootRef.current?.contains(event.target as Node)) setOpen(false);
    };
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.key !== "Escape") return;
      setOpen(false);
      buttonRef.current?.focus();
    };
    document.addEventListener("pointerdown", onPointerDown);
    document.addEventListener("keydown", onKeyDown);
    return () => {
      document.removeEventListener("pointerdown", onPointerDown);
      document.removeEventListener("keydown", onKeyDown);
    };
  }, [open]);

  const onSignOut = async () => {
    setBusy(true);
    setError(null);
    try {
      await signOut();
      announce("Signed out");
      navigate("/", { replace: true });
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };

  return (
    <div
      ref={rootRef}
      className="relative"
      // Tabbing out of the panel closes it, like any disclosure that floats over content.
      onBlur={(event) => {
        if (open && !rootRef.current?.contains(event.relatedTarget as Node | null)) setOpen(false);
      }}
    >
      <button
        ref={buttonRef}
        type="button"
        aria-expanded={open}
        aria-controls={panelId}
        aria-label={`Account menu (${user.name})`}
        data-testid="user-menu-button"
        onClick={() => setOpen((value) => !value)}
        onKeyDown={(event) => {
          if (event.key === "ArrowDown" && !open) {
            event.preventDefault();
            setOpen(true);
          }
        }}
        className="flex items-center gap-2 rounded-full py-1 pr-2 pl-1 hover:bg-slate-200/70 dark:hover:bg-slate-800"
      >
        <span
          aria-hidden="true"
          className="flex size-8 items-center justify-center rounded-full bg-sky-700 text-xs font-semibold text-white dark:bg-sky-400 dark:text-slate-950"
        >
          {initials(user)}
        </span>
        <span className="hidden max-w-40 truncate text-sm font-medium md:inline">{user.name}</span>
        <ChevronDownIcon className="size-4 text-slate-500" />
      </button>
      <div
        id={panelId}
        hidden={!open}
        className="absolute right-0 z-20 mt-2 w-64 max-w-[calc(100vw-2rem)] rounded-xl border border-slate-200 bg-white p-3 shadow-lg dark:border-slate-700 dark:bg-slate-900"
      >
        <p className="font-medium break-words" data-testid="user-name">
          {user.name}
        </p>
        <p className="text-sm break-all text-slate-600 dark:text-slate-400" data-testid="user-email">
          {user.email}
        </p>
        <hr className="my-3 border-slate-200 dark:border-slate-700" />
        <Link
          ref={firstActionRef}
          to="/account"
          data-testid="user-menu-account"
          onClick={() => {
            setOpen(false);
            // The new page moves focus to its heading; on /account already, focus stays on the trigger.
            buttonRef.current?.focus();
          }}
          className={buttonClass("secondary", "sm", "mb-2 w-full")}
        >
          Account
        </Link>
        {error && (
          <p role="alert" className="mb-2 text-sm text-red-700 dark:text-red-400">
            {error}
          </p>
        )}
        <button
          type="button"
          onClick={onSignOut}
          disabled={busy}
          className={buttonClass("secondary", "sm", "w-full")}
        >
          {busy ? "Signing out…" : "Sign out"}
        </button>
      </div>
    </div>
  );
}
