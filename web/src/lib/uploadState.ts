// Words for the engine's upload states, shared by the queue and the live-region announcements.

import type { UploadSnapshot, UploadState } from "../engine";

const LABELS: Record<UploadState, string> = {
  queued: "Queued",
  hashing: "Checking the file…",
  uploading: "Uploading",
  paused: "Paused",
  finalizing: "Finalizing…",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
};

export function stateLabel(upload: Pick<UploadSnapshot, "state" | "error">): string {
  if (upload.state === "failed") return `Failed: ${upload.error ?? "unknown reason"}`;
  // The engine pauses on its own only for a reason the user must read (the server's disk is full).
  if (upload.state === "paused" && upload.error) return `Paused: ${upload.error}`;
  return LABELS[upload.state];
}

export const isActive = (state: UploadState): boolean =>
  state === "queued" || state === "hashing" || state === "uploading" || state === "finalizing";

export const isFinished = (state: UploadState): boolean =>
  state === "completed" || state === "failed" || state === "cancelled";
