// App shell: header (name, nav, theme, account), main content, footer.

import { useEffect, useRef } from "react";
import { Link, NavLink, Outlet, useLocation } from "react-router";
import { useAuth } from "../state/auth";
import { useUploads } from "../state/uploads";
import { isActive } from "../lib/uploadState";
import { buttonClass } from "../lib/styles";
import { ThemeToggle } from "./ThemeToggle";
import { UserMenu } from "./UserMenu";
import { UploadAnnouncer } from "./UploadAnnouncer";
import { ServerUnreachable } from "./Feedback";

const navLinkClass = ({ isActive: current }: { isActive: boolean }) =>
  "flex flex-1 items-center justify-center gap-1.5 rounded-md px-3 py-1.5 text-sm font-medium sm:flex-none " +
  (current
    ? "bg-slate-200 text-slate-900 dark:bg-slate-800 dark:text-white"
    : "text-slate-700 hover:bg-slate-200/70 dark:text-slate-300 dark:hover:bg-slate-800");

function RunningBadge() {
  const running = useUploads().filter((upload) => isActive(upload.state)).length;
  if (!running) return null;
  // Visual only: the link keeps the plain name "Upload", and the live region already speaks each change.
  return (
    <span
      aria-hidden="true"
      data-testid="running-count"
      title={`${running} running`}
      className="rounded-full bg-sky-700 px-1.5 text-xs font-semibold text-white dark:bg-sky-400 dark:text-slate-950"
    >
      {running}
    </span>
  );
}

export function Layout() {
  const { status, user } = useAuth();
  const location = useLocation();
  const mainRef = useRef<HTMLElement>(null);
  const firstRender = useRef(true);

  // After client-side navigation, move focus to the new page's heading, as a page load would.
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    const heading = mainRef.current?.querySelector<HTMLElement>("h1");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }, [location.pathname]);

  const signedIn = status === "signedIn" && user !== null;
  const showSignInLink = !signedIn && location.pathname !== "/" && location.pathname !== "/signin";

  return (
    <div className="flex min-h-dvh flex-col">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:top-2 focus:left-2 focus:z-50 focus:rounded-md focus:bg-white focus:px-3 focus:py-2 focus:shadow dark:focus:bg-slate-900"
      >
        Skip to content
      </a>
      <header className="sticky top-0 z-10 border-b border-slate-200 bg-white/90 backdrop-blur dark:border-slate-800 dark:bg-slate-900/90">
        <div className="mx-auto flex max-w-5xl flex-wrap items-center gap-x-6 gap-y-2 px-4 py-2.5">
          <Link
            to="/"
            className="flex items-center gap-2 text-lg font-bold tracking-tight text-slate-900 dark:text-white"
          >
            <span
              aria-hidden="true"
              className="flex size-7 items-center justify-center rounded-md bg-sky-700 text-xs font-black text-white dark:bg-sky-400 dark:text-slate-950"
            >
              LF
            </span>
            LFUSYS
          </Link>
          {signedIn && (
            <nav aria-label="Main" className="order-last flex w-full gap-1 sm:order-none sm:w-auto">
              <NavLink to="/upload" className={navLinkClass}>
                Upload
                <RunningBadge />
              </NavLink>
              <NavLink to="/files" className={navLinkClass}>
                Files
              </NavLink>
            </nav>
          )}
          <div className="ml-auto flex items-center gap-2">
            <ThemeToggle />
            {signedIn ? (
              <UserMenu user={user} />
            ) : (
              showSignInLink && (
                <Link to="/signin" className={buttonClass("secondary", "sm")}>
                  Sign in
                </Link>
              )
            )}
          </div>
        </div>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1} className="mx-auto w-full max-w-5xl flex-1 px-4 py-6 outline-none sm:py-10">
        {status === "unreachable" && <ServerUnreachable />}
        <Outlet />
      </main>
      <footer className="border-t border-slate-200 py-4 text-center text-xs text-slate-500 dark:border-slate-800 dark:text-slate-400">
        LFUSYS · self-hosted uploads of very large files
      </footer>
      {signedIn && <UploadAnnouncer />}
    </div>
  );
}
