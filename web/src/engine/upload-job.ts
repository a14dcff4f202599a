// One upload as the manager tracks it: mutable inside the engine, published as frozen snapshots.

import type { UploadCreated } from "../api/types";
import { ChunkLayout, ThroughputMeter, TransferProgress } from "./progress";
import type { UploadSnapshot, UploadState } from "./types";

/** The server side of an upload, known once the session exists. */
export interface ServerSession {
  readonly uploadId: string;
  readonly transfer: TransferProgress;
}

export class UploadJob {
  readonly id: string;
  readonly file: File;
  session: ServerSession | null = null;
  state: UploadState;
  error: string | null = null;
  fileId: string | null = null;
  canRetry = false;
  /** The server's chunk list must be fetched before sending (after a pause or a failure). */
  needsSync = false;
  /** The file was picked to resume a session and is not yet checked against its stored chunks. */
  needsCheck = false;
  /**
   * Chunks the server holds but reports no hash for, so nothing vouches for their bytes: they are
   * sent again, first, and the server refuses them (409) if they differ.
   */
  uncheckedStored = new Set<number>();
  /** Whether this job counts against parallelUploads. */
  holdsSlot = false;
  /** The session-creating POST while it is in flight. */
  creating: Promise<UploadCreated> | null = null;
  /** Aborts the current run (requests, backoffs, polling) or the resume check. */
  controller: AbortController | null = null;
  readonly meter = new ThroughputMeter();
  private cached: UploadSnapshot | null = null;

  constructor(id: string, file: File, state: UploadState) {
    this.id = id;
    this.file = file;
    this.state = state;
  }

  openSession(uploadId: string, chunkSize: number, totalChunks: number): ServerSession {
    const layout = new ChunkLayout(this.file.size, chunkSize, totalChunks);
    this.session = { uploadId, transfer: new TransferProgress(layout) };
    return this.session;
  }

  /** Abort whatever is running for this job. */
  stop(): void {
    this.controller?.abort();
    this.controller = null;
    this.session?.transfer.dropAll();
  }

  /** Mark the published snapshot stale. */
  touch(): void {
    this.cached = null;
  }

  snapshot(now: number): UploadSnapshot {
    if (this.cached !== null) return this.cached;
    const transfer = this.session?.transfer ?? null;
    const fileSize = this.file.size;
    const bytesDone = transfer?.bytesDone ?? 0;
    const moving = this.state === "uploading";
    if (moving && transfer !== null) this.meter.sample(transfer.currentBytes, now);
    const bytesPerSecond = moving ? this.meter.bytesPerSecond : 0;
    this.cached = Object.freeze({
      id: this.id,
      uploadId: this.session?.uploadId ?? null,
      fileName: this.file.name,
      fileType: this.file.type,
      fileSize,
      state: this.state,
      bytesDone,
      progress: fileSize > 0 ? bytesDone / fileSize : this.state === "completed" ? 1 : 0,
      bytesPerSecond,
      etaSeconds: bytesPerSecond > 0 ? (fileSize - bytesDone) / bytesPerSecond : null,
      chunkSize: transfer?.layout.chunkSize ?? null,
      totalChunks: transfer?.layout.totalChunks ?? null,
      chunksDone: transfer?.chunksDone ?? 0,
      error: this.error,
      fileId: this.fileId,
      canRetry: this.canRetry,
    });
    return this.cached;
  }
}
