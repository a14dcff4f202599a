import { Link } from "react-router";
import { linkClass } from "../lib/styles";

export function NotFoundPage() {
  return (
    <div className="py-12 text-center">
      <title>Page not found – LFUSYS</title>
      <p className="text-sm font-semibold text-sky-700 dark:text-sky-400">404</p>
      <h1 className="mt-2 text-3xl font-bold tracking-tight">Page not found</h1>
      <p className="mt-3 text-slate-600 dark:text-slate-400">There is nothing at this address.</p>
      <p className="mt-6">
        <Link to="/" className={linkClass}>
          Go to the start page
        </Link>
      </p>
    </div>
  );
}
