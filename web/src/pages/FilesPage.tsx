// "/files": the user's finished files, newest first, 20 per page (cursor paging), with download
// and delete.

import { useCallback, useEffect, useId, useRef, useState } from "react";
import { Link } from "react-router";
import { deleteFile, errorMessage, listFiles } from "../api/client";
import type { FileView } from "../api/types";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ErrorNotice, Loading } from "../components/Feedback";
import { FileIcon, RefreshIcon } from "../components/icons";
import { downloadFile } from "../lib/download";
import { fileExtension, formatBytes, formatDateTime } from "../lib/format";
import { buttonClass, cardClass } from "../lib/styles";
import { useAnnounce } from "../state/announcer";

const PAGE_SIZE = 20;

/** Labels for the stacked (phone) layout, where the column headers are hidden. */
function CellLabel({ children }: { children: string }) {
  return <span className="mr-2 text-xs font-medium text-slate-500 uppercase md:hidden dark:text-slate-400">{children}</span>;
}

function FileRow({
  file,
  onDownload,
  onDelete,
  downloading,
}: {
  file: FileView;
  onDownload(): void;
  onDelete(): void;
  downloading: boolean;
}) {
  const nameId = useId();
  const ext = fileExtension(file.name);
  return (
    <tr
      role="row"
      data-testid="file-row"
      data-file-id={file.id}
      className="block border-b border-slate-200 p-4 last:border-b-0 md:table-row md:p-0 dark:border-slate-800"
    >
      <td role="cell" className="block md:table-cell md:py-3 md:pr-3 md:pl-4">
        <div className="flex items-center gap-3">
          <span
            aria-hidden="true"
            className="hidden size-9 shrink-0 items-center justify-center rounded-md bg-slate-100 text-slate-500 sm:flex dark:bg-slate-800 dark:text-slate-400"
          >
            <FileIcon className="size-5" />
          </span>
          <span id={nameId} data-testid="file-name" className="min-w-0 font-medium break-all">
            {file.name}
          </span>
          {ext && (
            <span className="shrink-0 rounded bg-slate-100 px-1.5 py-0.5 text-xs font-semibold text-slate-700 dark:bg-slate-800 dark:text-slate-300">
              {ext}
            </span>
          )}
        </div>
      </td>
      <td role="cell" className="mt-2 block text-sm text-slate-700 md:mt-0 md:table-cell md:px-3 md:py-3 dark:text-slate-300">
        <CellLabel>Type</CellLabel>
        <span className="break-all">{file.type || "Unknown"}</span>
      </td>
      <td role="cell" className="mt-1 block text-sm whitespace-nowrap tabular-nums md:mt-0 md:table-cell md:px-3 md:py-3 md:text-right">
        <CellLabel>Size</CellLabel>
        <span title={`${file.size.toLocaleString()} bytes`}>{formatBytes(file.size)}</span>
      </td>
      <td role="cell" className="mt-1 block text-sm whitespace-nowrap text-slate-700 md:mt-0 md:table-cell md:px-3 md:py-3 dark:text-slate-300">
        <CellLabel>Uploaded</CellLabel>
        <time dateTime={file.created_at}>{formatDateTime(file.created_at)}</time>
      </td>
      <td role="cell" className="mt-3 block md:mt-0 md:table-cell md:py-3 md:pr-4 md:pl-3">
        <div className="flex gap-2 md:justify-end">
          <button type="button" aria-describedby={nameId} onClick={onDownload} disabled={downloading} className={buttonClass("secondary", "sm")}>
            {downloading ? "Preparing…" : "Download"}
          </button>
          <button
            type="button"
            aria-describedby={nameId}
            onClick={onDelete}
            className={buttonClass("dangerGhost", "sm")}
          >
            Delete
          </button>
        </div>
      </td>
    </tr>
  );
}

export function FilesPage() {
  const announce = useAnnounce();
  // cursors[i] is the cursor that loads page i (null for the first page): Previous pops, Next pushes.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [reloadKey, setReloadKey] = useState(0);
  const [files, setFiles] = useState<FileView[] | null>(null);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [downloadingId, setDownloadingId] = useState<string | null>(null);
  const [rowError, setRowError] = useState<string | null>(null);
  const [toDelete, setToDelete] = useState<FileView | null>(null);
  const [deleteOpen, setDeleteOpen] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);

  const page = cursors.length - 1;
  const cursor = cursors[page] ?? null;

  useEffect(() => {
    let live = true;
    setLoading(true);
    listFiles({ limit: PAGE_SIZE, cursor })
      .then((result) => {
        if (!live) return;
        setFiles(result.files);
        setNextCursor(result.next_cursor);
        setError(null);
      })
      .catch((err: unknown) => live && setError(errorMessage(err)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [cursor, reloadKey]);

  const refresh = useCallback(() => setReloadKey((key) => key + 1), []);

  const download = async (file: FileView) => {
    setDownloadingId(file.id);
    setRowError(null);
    try {
      await downloadFile(file.id);
      announce(`Downloading ${file.name}`);
    } catch (err) {
      const message = `Could not download ${file.name}: ${errorMessage(err)}`;
      setRowError(message);
      announce(message, "assertive");
    } finally {
      setDownloadingId(null);
    }
  };

  const confirmDelete = async () => {
    if (!toDelete || !deleteOpen) return;
    setDeleting(true);
    setDeleteError(null);
    try {
      await deleteFile(toDelete.id);
      announce(`Deleted ${toDelete.name}`);
      setDeleteOpen(false);
      // The last file of a later page: go back a page rather than show an empty one.
      if (files?.length === 1 && page > 0) setCursors((stack) => stack.slice(0, -1));
      else refresh();
      window.setTimeout(() => headingRef.current?.focus(), 0);
    } catch (err) {
      setDeleteError(errorMessage(err));
    } finally {
      setDeleting(false);
    }
  };

  const empty = files !== null && files.length === 0 && page === 0;

  return (
    <div>
      <title>Files – LFUSYS</title>
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-bold tracking-tight">
          Files
        </h1>
        <button type="button" onClick={refresh} disabled={loading} className={buttonClass("secondary", "sm")}>
          <RefreshIcon className={`size-4 ${loading ? "animate-spin" : ""}`} />
          Refresh
        </button>
      </div>
      <p className="mt-1 mb-6 text-slate-600 dark:text-slate-400">Your finished uploads, newest first.</p>

      {error && (
        <div className="mb-4">
          <ErrorNotice
            action={
              <button type="button" onClick={refresh} className={buttonClass("secondary", "sm")}>
                Try again
              </button>
            }
          >
            Could not load your files: {error}
          </ErrorNotice>
        </div>
      )}
      {rowError && (
        <div className="mb-4">
          <ErrorNotice>{rowError}</ErrorNotice>
        </div>
      )}

      {files === null && loading && <Loading label="Loading your files…" />}

      {empty && (
        <div className={`${cardClass} px-6 py-12 text-center`} data-testid="files-empty">
          <FileIcon className="mx-auto size-10 text-slate-400" />
          <h2 className="mt-3 text-lg font-semibold">No files yet</h2>
          <p className="mt-1 text-slate-600 dark:text-slate-400">Files you upload appear here once they are complete.</p>
          <Link to="/upload" className={buttonClass("primary", "md", "mt-5")}>
            Upload files
          </Link>
        </div>
      )}

      {files !== null && !empty && (
        <div className={`${cardClass} overflow-hidden`} aria-busy={loading}>
          <table role="table" className="block w-full text-left md:table" data-testid="files-table">
            <caption className="sr-only">Your files, newest first, page {page + 1}</caption>
            <thead role="rowgroup" className="hidden bg-slate-50 text-xs text-slate-600 uppercase md:table-header-group dark:bg-slate-800/60 dark:text-slate-400">
              <tr role="row">
                <th role="columnheader" scope="col" className="py-2.5 pr-3 pl-4 font-semibold">Name</th>
                <th role="columnheader" scope="col" className="px-3 py-2.5 font-semibold">Type</th>
                <th role="columnheader" scope="col" className="px-3 py-2.5 text-right font-semibold">Size</th>
                <th role="columnheader" scope="col" className="px-3 py-2.5 font-semibold">Uploaded</th>
                <th role="columnheader" scope="col" className="py-2.5 pr-4 pl-3 text-right font-semibold">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody role="rowgroup" className="block md:table-row-group">
              {files.map((file) => (
                <FileRow
                  key={file.id}
                  file={file}
                  downloading={downloadingId === file.id}
                  onDownload={() => download(file)}
                  onDelete={() => {
                    setDeleteError(null);
                    setToDelete(file);
                    setDeleteOpen(true);
                  }}
                />
              ))}
            </tbody>
          </table>
          {files.length === 0 && (
            <p className="p-4 text-sm text-slate-600 dark:text-slate-400">No more files on this page.</p>
          )}
        </div>
      )}

      {files !== null && (page > 0 || nextCursor) && (
        <nav aria-label="Pages" className="mt-4 flex items-center justify-between gap-3">
          <button
            type="button"
            disabled={page === 0 || loading}
            onClick={() => setCursors((stack) => stack.slice(0, -1))}
            className={buttonClass("secondary", "sm")}
          >
            Previous
          </button>
          <span className="text-sm text-slate-600 dark:text-slate-400" aria-live="polite">
            Page {page + 1}
          </span>
          <button
            type="button"
            disabled={!nextCursor || loading}
            onClick={() => nextCursor && setCursors((stack) => [...stack, nextCursor])}
            className={buttonClass("secondary", "sm")}
          >
            Next
          </button>
        </nav>
      )}

      <ConfirmDialog
        open={deleteOpen}
        title={`Delete ${toDelete?.name ?? "this file"}?`}
        confirmLabel="Delete"
        busy={deleting}
        error={deleteError}
        onConfirm={confirmDelete}
        onCancel={() => setDeleteOpen(false)}
      >
        The file and its {toDelete ? formatBytes(toDelete.size) : ""} of data are removed from the server. This cannot
        be undone.
      </ConfirmDialog>
    </div>
  );
}
