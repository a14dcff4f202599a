// Unfinished server sessions (from this or another device) that this tab is not running: pick the
// same file again and the engine sends only the missing chunks.

import { useCallback, useEffect, useRef, useState } from "react";
import { cancelUpload, errorMessage, listUploads } from "../api/client";
import type { UploadView } from "../api/types";
import { ResumeMismatchError, type UploadSnapshot } from "../engine";
import { formatBytes, formatDateTime, formatRelative } from "../lib/format";
import { buttonClass, cardClass } from "../lib/styles";
import { useAnnounce } from "../state/announcer";
import { resumeUpload } from "../state/uploads";
import { ConfirmDialog } from "./ConfirmDialog";
import { ErrorNotice, Loading } from "./Feedback";
import { ProgressBar } from "./ProgressBar";
import { RefreshIcon } from "./icons";

/** Unfinished uploads shown at first; "Show more" adds as many again. */
const PAGE_SIZE = 20;
/** The most a refresh reloads at once (the server's largest page). */
const MAX_PAGE_SIZE = 100;

interface RowStatus {
  checking?: boolean;
  error?: string;
}

function ResumeRow({
  session,
  status,
  onPick,
  onCancel,
}: {
  session: UploadView;
  status: RowStatus;
  onPick(file: File): void;
  onCancel(): void;
}) {
  const inputRef = useRef<HTMLInputElement>(null);
  const id = session.upload_id;
  const nameId = `resume-name-${id}`;
  const errorId = `resume-error-${id}`;
  const fraction = session.total_chunks ? session.uploaded_chunks / session.total_chunks : 0;
  const percent = Math.floor(fraction * 1000) / 10;
  const assembling = session.status === "finalizing";
  // Only listed if the server lists failed sessions at all; it takes no more chunks for them.
  const failed = session.status === "failed";
  // Older servers send no failure_reason at all.
  const failureReason = session.failure_reason ?? null;

  return (
    <li data-testid={`resume-${id}`} data-upload-id={id} className="p-4">
      <div className="flex flex-wrap items-baseline justify-between gap-x-3">
        <p id={nameId} className="min-w-0 truncate font-medium" title={session.file_name}>
          {session.file_name}
        </p>
        <p className="shrink-0 text-sm text-slate-600 dark:text-slate-400">{formatBytes(session.file_size)}</p>
      </div>
      <div className="mt-2">
        <ProgressBar
          value={fraction}
          state="paused"
          label={`Stored part of ${session.file_name}`}
          valueText={`${percent}% stored`}
        />
      </div>
      <p className="mt-1.5 text-sm text-slate-600 dark:text-slate-400">
        <span className="font-medium text-slate-800 dark:text-slate-200">
          {session.uploaded_chunks} of {session.total_chunks} chunks stored ({percent}%)
        </span>
        {" · "}
        Expires{" "}
        <time dateTime={session.expires_at} title={formatDateTime(session.expires_at)}>
          {formatRelative(session.expires_at)}
        </time>
      </p>
      {failed ? (
        <p data-testid="resume-failure" className="mt-3 text-sm text-red-700 dark:text-red-400">
          The server could not assemble this file{failureReason ? `: ${failureReason}` : ""}. Upload it again as a new
          file.
        </p>
      ) : assembling ? (
        <p className="mt-3 text-sm text-slate-700 dark:text-slate-300">
          Every chunk is stored; the server is assembling the file. It will appear in Files shortly.
        </p>
      ) : (
        <div className="mt-3 flex flex-wrap items-center gap-2">
          <button
            type="button"
            aria-describedby={status.error ? `${nameId} ${errorId}` : nameId}
            disabled={status.checking}
            onClick={() => inputRef.current?.click()}
            className={buttonClass("primary", "sm")}
          >
            {status.checking ? "Checking the file…" : "Pick the file again"}
          </button>
          <button
            type="button"
            aria-describedby={nameId}
            disabled={status.checking}
            onClick={onCancel}
            className={buttonClass("ghost", "sm")}
          >
            Cancel upload
          </button>
          <input
            ref={inputRef}
            type="file"
            hidden
            aria-label={`Pick ${session.file_name} again`}
            data-testid={`resume-input-${id}`}
            onChange={(event) => {
              const file = event.target.files?.[0];
              event.target.value = "";
              if (file) onPick(file);
            }}
          />
        </div>
      )}
      {failureReason && !failed && (
        <p data-testid="resume-failure" className="mt-2 text-sm text-slate-600 dark:text-slate-400">
          The last try to assemble it failed: {failureReason}
        </p>
      )}
      {status.error && (
        <p id={errorId} role="alert" data-testid="pick-error" className="mt-2 text-sm text-red-700 dark:text-red-400">
          {status.error}
        </p>
      )}
    </li>
  );
}

export function ResumeSection({ uploads }: { uploads: readonly UploadSnapshot[] }) {
  const announce = useAnnounce();
  const [sessions, setSessions] = useState<UploadView[] | null>(null);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const shown = useRef(0);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [rows, setRows] = useState<Record<string, RowStatus>>({});
  // The session in the cancel dialog stays set while the dialog closes, so its words do not flicker.
  const [toCancel, setToCancel] = useState<UploadView | null>(null);
  const [cancelOpen, setCancelOpen] = useState(false);
  const [cancelling, setCancelling] = useState(false);
  const [cancelError, setCancelError] = useState<string | null>(null);
  const requestNo = useRef(0);
  const headingRef = useRef<HTMLHeadingElement>(null);

  const load = useCallback(async () => {
    const no = ++requestNo.current;
    setLoading(true);
    try {
      // A refresh keeps as many rows as were shown (up to the server's largest page).
      const limit = Math.min(MAX_PAGE_SIZE, Math.max(PAGE_SIZE, shown.current));
      const page = await listUploads({ limit });
      if (no !== requestNo.current) return; // a newer refresh won
      shown.current = page.uploads.length;
      setSessions(page.uploads);
      setNextCursor(page.next_cursor);
      setLoadError(null);
    } catch (err) {
      if (no === requestNo.current) setLoadError(errorMessage(err));
    } finally {
      if (no === requestNo.current) setLoading(false);
    }
  }, []);

  const loadMore = async () => {
    if (!nextCursor) return;
    const no = requestNo.current; // a refresh started meanwhile wins
    setLoadingMore(true);
    try {
      const page = await listUploads({ limit: PAGE_SIZE, cursor: nextCursor });
      if (no !== requestNo.current) return;
      setSessions((current) => {
        const listed = new Set((current ?? []).map((s) => s.upload_id));
        const more = [...(current ?? []), ...page.uploads.filter((s) => !listed.has(s.upload_id))];
        shown.current = more.length;
        return more;
      });
      setNextCursor(page.next_cursor);
      setLoadError(null);
    } catch (err) {
      if (no === requestNo.current) setLoadError(errorMessage(err));
    } finally {
      setLoadingMore(false);
    }
  };

  // Reload when the queue gains or loses an upload or one ends: the server's list changes then
  // (a removed failed upload becomes resumable here; a cancelled one disappears).
  const queueKey = uploads
    .map((u) => `${u.id}:${u.state === "completed" || u.state === "cancelled" || u.state === "failed"}`)
    .join(",");
  useEffect(() => {
    const timer = window.setTimeout(load, queueKey ? 400 : 0);
    return () => window.clearTimeout(timer);
  }, [queueKey, load]);

  const setRow = (id: string, status: RowStatus) => setRows((current) => ({ ...current, [id]: status }));

  const pick = async (session: UploadView, file: File) => {
    setRow(session.upload_id, { checking: true });
    try {
      await resumeUpload(file, session);
      setRow(session.upload_id, {});
      announce(`Resuming ${session.file_name}`);
    } catch (err) {
      // ResumeMismatchError: a different file; nothing was sent. Other errors: say what happened.
      const message = err instanceof ResumeMismatchError ? err.message : errorMessage(err);
      setRow(session.upload_id, { error: message });
      announce(`${session.file_name}: ${message}`, "assertive");
    }
  };

  const confirmCancel = async () => {
    if (!toCancel || !cancelOpen) return;
    setCancelling(true);
    setCancelError(null);
    try {
      await cancelUpload(toCancel.upload_id);
      announce(`Cancelled the upload of ${toCancel.file_name}`);
      setSessions((current) => current?.filter((s) => s.upload_id !== toCancel.upload_id) ?? null);
      setCancelOpen(false);
      // The row and its button are gone: put focus somewhere sensible once the dialog has closed.
      window.setTimeout(() => headingRef.current?.focus(), 0);
    } catch (err) {
      setCancelError(errorMessage(err));
    } finally {
      setCancelling(false);
    }
  };

  // Sessions this tab already runs are in the queue above; a file being checked stays here until
  // the engine accepts it.
  const running = new Set(uploads.map((u) => u.uploadId).filter(Boolean));
  const visible = (sessions ?? []).filter((s) => rows[s.upload_id]?.checking || !running.has(s.upload_id));

  return (
    <section aria-labelledby="resume-title" className="mt-10" data-testid="unfinished-section">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h2 id="resume-title" ref={headingRef} tabIndex={-1} className="text-lg font-semibold">
          Unfinished uploads
        </h2>
        <button type="button" onClick={load} disabled={loading} className={buttonClass("secondary", "sm")}>
          <RefreshIcon className={`size-4 ${loading ? "animate-spin" : ""}`} />
          Refresh
        </button>
      </div>
      <p className="mt-1 max-w-2xl text-sm text-slate-600 dark:text-slate-400">
        Uploads started earlier, in this browser or on another device. Pick the same file again and only
        the missing chunks are sent.
      </p>
      <div className="mt-3">
        {loadError && (
          <ErrorNotice
            action={
              <button type="button" onClick={load} className={buttonClass("secondary", "sm")}>
                Try again
              </button>
            }
          >
            Could not load unfinished uploads: {loadError}
          </ErrorNotice>
        )}
        {sessions === null && loading && <Loading label="Looking for unfinished uploads…" />}
        {sessions !== null && visible.length === 0 && !loadError && (
          <p className="text-sm text-slate-600 dark:text-slate-400" data-testid="unfinished-empty">
            Nothing to resume.
          </p>
        )}
        {visible.length > 0 && (
          <ul className={`${cardClass} divide-y divide-slate-200 dark:divide-slate-800`}>
            {visible.map((session) => (
              <ResumeRow
                key={session.upload_id}
                session={session}
                status={rows[session.upload_id] ?? {}}
                onPick={(file) => pick(session, file)}
                onCancel={() => {
                  setCancelError(null);
                  setToCancel(session);
                  setCancelOpen(true);
                }}
              />
            ))}
          </ul>
        )}
        {sessions !== null && nextCursor && (
          <div className="mt-3 flex justify-center">
            <button
              type="button"
              onClick={loadMore}
              disabled={loadingMore || loading}
              className={buttonClass("secondary", "sm")}
              data-testid="unfinished-more"
            >
              {loadingMore ? "Loading…" : "Show more"}
            </button>
          </div>
        )}
      </div>
      <ConfirmDialog
        open={cancelOpen}
        title={`Cancel the upload of ${toCancel?.file_name ?? "this file"}?`}
        confirmLabel="Cancel upload"
        cancelLabel="Keep it"
        busy={cancelling}
        error={cancelError}
        onConfirm={confirmCancel}
        onCancel={() => setCancelOpen(false)}
      >
        {toCancel && toCancel.uploaded_chunks > 0
          ? `The ${toCancel.uploaded_chunks} chunks stored so far are deleted and the upload cannot be resumed.`
          : "Nothing has been stored yet. The upload is removed and cannot be resumed."}
      </ConfirmDialog>
    </section>
  );
}
