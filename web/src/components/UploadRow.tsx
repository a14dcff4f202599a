// One upload in the queue: what it is, how far it got, and what can be done with it now.

import { useState } from "react";
import { Link } from "react-router";
import { errorMessage } from "../api/client";
import type { UploadEngine, UploadSnapshot } from "../engine";
import { downloadFile } from "../lib/download";
import { fileExtension, formatBytes, formatEta, formatPercent, formatSpeed } from "../lib/format";
import { buttonClass, linkClass } from "../lib/styles";
import { stateLabel } from "../lib/uploadState";
import { useAnnounce } from "../state/announcer";
import { previewUrl } from "../state/uploads";
import { FileIcon } from "./icons";
import { ProgressBar } from "./ProgressBar";

const STATE_TEXT: Partial<Record<UploadSnapshot["state"], string>> = {
  completed: "text-emerald-700 dark:text-emerald-400",
  failed: "text-red-700 dark:text-red-400",
  paused: "text-amber-700 dark:text-amber-300",
};

function Thumbnail({ upload }: { upload: UploadSnapshot }) {
  const url = previewUrl(upload.id);
  if (url) {
    return (
      <img
        src={url}
        alt=""
        className="size-10 shrink-0 rounded-lg border border-slate-200 object-cover sm:size-14 dark:border-slate-700"
      />
    );
  }
  const ext = fileExtension(upload.fileName);
  return (
    <span
      aria-hidden="true"
      className="flex size-10 shrink-0 flex-col items-center justify-center rounded-lg bg-slate-100 sm:size-14 text-slate-500 dark:bg-slate-800 dark:text-slate-400"
    >
      <FileIcon className="size-5 sm:size-6" />
      {ext && <span className="mt-0.5 hidden max-w-12 truncate text-[10px] font-semibold sm:block">{ext}</span>}
    </span>
  );
}

export function UploadRow({ upload, engine }: { upload: UploadSnapshot; engine: UploadEngine }) {
  const announce = useAnnounce();
  const [actionError, setActionError] = useState<string | null>(null);
  const [downloading, setDownloading] = useState(false);
  const nameId = `upload-name-${upload.id}`;
  const { state } = upload;

  // A file being checked for resume can be paused too: the check stops and goes on after Resume.
  const pausable = state === "queued" || state === "uploading" || state === "hashing";
  const cancellable = pausable || state === "paused";
  const checking = state === "hashing";
  const finished = state === "completed" || state === "failed" || state === "cancelled";
  const eta = state === "uploading" ? formatEta(upload.etaSeconds) : null;

  const act = async (action: () => void | Promise<void>) => {
    setActionError(null);
    try {
      await action();
    } catch (err) {
      const message = errorMessage(err);
      setActionError(message);
      announce(`${upload.fileName}: ${message}`, "assertive");
    }
  };

  const download = async () => {
    if (!upload.fileId) return;
    setDownloading(true);
    await act(async () => {
      await downloadFile(upload.fileId!);
    });
    setDownloading(false);
  };

  const details = [
    // While checking, the bar counts bytes found equal to the part already uploaded, not bytes sent.
    checking ? `${formatBytes(upload.bytesDone)} checked` : `${formatBytes(upload.bytesDone)} of ${formatBytes(upload.fileSize)}`,
    state === "uploading" && upload.bytesPerSecond > 0 ? formatSpeed(upload.bytesPerSecond) : null,
    eta,
  ].filter(Boolean);

  return (
    <li
      data-testid={`upload-${upload.id}`}
      data-state={state}
      data-upload-id={upload.uploadId ?? undefined}
      data-file-id={upload.fileId ?? undefined}
      className="flex gap-3 p-4 sm:gap-4"
    >
      <Thumbnail upload={upload} />
      <div className="min-w-0 flex-1">
        <div className="flex flex-wrap items-baseline justify-between gap-x-3">
          <p id={nameId} className="min-w-0 truncate font-medium" title={upload.fileName}>
            {upload.fileName}
          </p>
          <p className="shrink-0 text-sm text-slate-600 dark:text-slate-400">{formatBytes(upload.fileSize)}</p>
        </div>

        <div className="mt-2">
          <ProgressBar
            value={upload.progress}
            state={state}
            label={checking ? `Check of ${upload.fileName}` : `Upload of ${upload.fileName}`}
            valueText={`${formatPercent(upload.progress)}, ${stateLabel(upload)}`}
          />
        </div>

        <div className="mt-1.5 flex flex-wrap items-baseline justify-between gap-x-4 gap-y-1 text-sm">
          <p data-testid="state-label" className={`font-medium break-words ${STATE_TEXT[state] ?? ""}`}>
            {stateLabel(upload)}
          </p>
          <p className="text-slate-600 tabular-nums dark:text-slate-400">
            <span data-testid="percent-label" className="font-medium text-slate-800 dark:text-slate-200">
              {formatPercent(upload.progress)}
            </span>
            {details.map((detail) => (
              // The space before each part is where a narrow screen may wrap the line.
              <span key={detail}>
                {" "}
                <span className="whitespace-nowrap">· {detail}</span>
              </span>
            ))}
          </p>
        </div>

        <div className="mt-3 flex flex-wrap items-center gap-2">
          {pausable && (
            <button type="button" aria-describedby={nameId} onClick={() => act(() => engine.pause(upload.id))} className={buttonClass("secondary", "sm")}>
              Pause
            </button>
          )}
          {state === "paused" && (
            <button type="button" aria-describedby={nameId} onClick={() => act(() => engine.resume(upload.id))} className={buttonClass("primary", "sm")}>
              Resume
            </button>
          )}
          {state === "failed" && upload.canRetry && (
            <button type="button" aria-describedby={nameId} onClick={() => act(() => engine.retry(upload.id))} className={buttonClass("primary", "sm")}>
              Retry
            </button>
          )}
          {cancellable && (
            <button type="button" aria-describedby={nameId} onClick={() => act(() => engine.cancel(upload.id))} className={buttonClass("ghost", "sm")}>
              Cancel
            </button>
          )}
          {state === "completed" && upload.fileId && (
            <>
              <button type="button" aria-describedby={nameId} onClick={download} disabled={downloading} className={buttonClass("secondary", "sm")}>
                {downloading ? "Preparing…" : "Download"}
              </button>
              <Link to="/files" className={`${linkClass} text-sm`}>
                Show in file list
              </Link>
            </>
          )}
          {finished && (
            <button type="button" aria-describedby={nameId} onClick={() => act(() => engine.remove(upload.id))} className={buttonClass("ghost", "sm")}>
              Remove
            </button>
          )}
        </div>
        {actionError && (
          <p role="alert" className="mt-2 text-sm text-red-700 dark:text-red-400">
            {actionError}
          </p>
        )}
      </div>
    </li>
  );
}
