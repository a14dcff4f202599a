// The uploads of this tab, newest first, straight from the engine's snapshots.

import type { UploadSnapshot } from "../engine";
import { getEngine } from "../state/uploads";
import { cardClass, buttonClass } from "../lib/styles";
import { UploadRow } from "./UploadRow";

export function UploadQueue({ uploads }: { uploads: readonly UploadSnapshot[] }) {
  const engine = getEngine();
  const done = uploads.filter((upload) => upload.state === "completed" || upload.state === "cancelled");
  const ordered = [...uploads].reverse();

  return (
    <section aria-labelledby="queue-title" className="mt-10">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h2 id="queue-title" className="text-lg font-semibold">
          Uploads
          {uploads.length > 0 && (
            <span className="ml-2 text-sm font-normal text-slate-600 dark:text-slate-400">({uploads.length})</span>
          )}
        </h2>
        {done.length > 0 && (
          <button
            type="button"
            onClick={() => done.forEach((upload) => engine.remove(upload.id))}
            className={buttonClass("ghost", "sm")}
          >
            Clear finished
          </button>
        )}
      </div>
      {uploads.length === 0 ? (
        <p className="mt-2 text-sm text-slate-600 dark:text-slate-400">
          Files you add appear here with their progress. Uploads keep going while you look at other pages.
        </p>
      ) : (
        <ul data-testid="queue-list" className={`${cardClass} mt-3 divide-y divide-slate-200 dark:divide-slate-800`}>
          {ordered.map((upload) => (
            <UploadRow key={upload.id} upload={upload} engine={engine} />
          ))}
        </ul>
      )}
    </section>
  );
}
