// "/" for visitors: what LFUSYS does, and the way in. Signed-in users go straight to /upload.

import { Link, Navigate } from "react-router";
import { useAuth } from "../state/auth";
import { Loading } from "../components/Feedback";
import { ChunksIcon, FolderIcon, ResumeIcon, ShieldIcon } from "../components/icons";
import { buttonClass, cardClass } from "../lib/styles";

const FEATURES = [
  {
    Icon: ChunksIcon,
    title: "Very large files",
    text: "Files of many gigabytes are cut into chunks that travel several at a time, so a slow or busy link is used to the full.",
  },
  {
    Icon: ShieldIcon,
    title: "Every chunk checked",
    text: "Each chunk carries its SHA-256; the server stores it only if the bytes match, and assembles the file when all are in.",
  },
  {
    Icon: ResumeIcon,
    title: "Resume anywhere",
    text: "A dropped network, a reloaded page, even another computer: pick the same file again and only the missing chunks are sent.",
  },
  {
    Icon: FolderIcon,
    title: "Your files, in one place",
    text: "Finished files are listed newest first, downloaded through short-lived signed links, and deleted when you no longer need them.",
  },
];

export function HomePage() {
  const { status } = useAuth();
  if (status === "signedIn") return <Navigate to="/upload" replace />;
  if (status === "loading") return <Loading />;

  return (
    <div>
      <title>LFUSYS – upload very large files</title>
      <section className="py-6 sm:py-12">
        <p className="text-sm font-semibold tracking-wide text-sky-700 uppercase dark:text-sky-400">Self-hosted file uploads</p>
        <h1 className="mt-2 max-w-3xl text-3xl font-bold tracking-tight text-balance sm:text-5xl">
          Upload very large files from your browser, reliably.
        </h1>
        <p className="mt-4 max-w-2xl text-lg text-slate-600 dark:text-slate-300">
          LFUSYS sends files in checked chunks, in parallel, and picks up where it stopped after network drops,
          page reloads, or on another device. It runs on your own server, with nothing sent elsewhere.
        </p>
        <div className="mt-8 flex flex-wrap gap-3">
          <Link to="/signin" className={buttonClass("primary", "md", "px-5 py-2.5 text-base")}>
            Sign in
          </Link>
          <Link to="/signin?mode=register" className={buttonClass("secondary", "md", "px-5 py-2.5 text-base")}>
            Create an account
          </Link>
        </div>
      </section>

      <section aria-labelledby="features-title" className="mt-6">
        <h2 id="features-title" className="sr-only">
          What LFUSYS does
        </h2>
        <ul className="grid gap-4 sm:grid-cols-2">
          {FEATURES.map(({ Icon, title, text }) => (
            <li key={title} className={`${cardClass} p-5`}>
              <span className="flex size-10 items-center justify-center rounded-lg bg-sky-100 text-sky-800 dark:bg-sky-950 dark:text-sky-300">
                <Icon />
              </span>
              <h3 className="mt-3 font-semibold">{title}</h3>
              <p className="mt-1 text-sm text-slate-600 dark:text-slate-400">{text}</p>
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}
