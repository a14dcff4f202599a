// The upload engine's public contract. The engine is framework-free: the React UI is one user of it.

import type { ChunkList, UploadCreated, UploadView } from "../api/types";

/** Where an upload is, as the user sees it. */
export type UploadState =
  | "queued" // waiting for a free slot
  | "hashing" // checking a file picked for resume against every chunk the server holds
  | "uploading"
  | "paused"
  | "finalizing" // every chunk acknowledged; the server is assembling the file
  | "completed" // the server says the session is completed (fileId is set)
  | "failed" // see `error`; `retry` may be possible
  | "cancelled";

export interface UploadSnapshot {
  /** Local id, stable for the life of the page. */
  readonly id: string;
  /** Server upload id, once the session exists. */
  readonly uploadId: string | null;
  readonly fileName: string;
  readonly fileType: string;
  readonly fileSize: number;
  readonly state: UploadState;
  /** Bytes acknowledged plus bytes in flight (while "hashing": stored bytes checked so far); never decreases. */
  readonly bytesDone: number;
  /** bytesDone / fileSize, 0..1; never decreases. */
  readonly progress: number;
  /** Smoothed recent throughput, bytes per second (0 when not uploading). */
  readonly bytesPerSecond: number;
  /** Estimated seconds left, or null when unknown. */
  readonly etaSeconds: number | null;
  readonly chunkSize: number | null;
  readonly totalChunks: number | null;
  readonly chunksDone: number;
  /** Why it failed, or why the engine paused it (e.g. the server is out of space), in plain words. */
  readonly error: string | null;
  /** The finished file's id (state "completed"). */
  readonly fileId: string | null;
  /** Whether `retry` can restart it. */
  readonly canRetry: boolean;
}

/** The HTTP operations the engine needs. The real one speaks to /api/v1; tests use a fake. */
export interface Transport {
  createUpload(request: { file_name: string; file_type: string; file_size: number }): Promise<UploadCreated>;
  /**
   * PUT one chunk. `onProgress` reports bytes of this body sent so far. Rejects with
   * {@link HttpError} for a non-2xx answer and {@link NetworkError} when no answer came.
   */
  putChunk(
    uploadId: string,
    n: number,
    body: Blob,
    sha256: string,
    options: { signal: AbortSignal; onProgress: (sentBytes: number) => void },
  ): Promise<void>;
  getUpload(uploadId: string): Promise<UploadView>;
  /** Every stored chunk, however many pages the server splits the list into. */
  listChunks(uploadId: string): Promise<ChunkList>;
  cancelUpload(uploadId: string): Promise<void>;
  /** Rotate the session cookies (POST /auth/refresh); rejects if the user must sign in again. */
  refreshSession(): Promise<void>;
}

/** SHA-256 of a slice of a file, as lower-case hex. The real one runs in a Web Worker. */
export interface Hasher {
  hash(blob: Blob): Promise<string>;
}

/** Online/offline notifications (the browser's `online`/`offline` events in the real app). */
export interface Connectivity {
  isOnline(): boolean;
  subscribe(listener: (online: boolean) => void): () => void;
}

export interface EngineOptions {
  /** Chunks in flight per upload (default 4). */
  concurrency?: number;
  /** Uploads running at once (default 2); the rest wait as "queued". */
  parallelUploads?: number;
  /** Attempts per chunk before the upload fails (default 8). */
  maxAttempts?: number;
  /** First retry delay; doubled each time, with full jitter (default 500 ms). */
  baseDelayMs?: number;
  /** Longest retry delay (default 30 s). */
  maxDelayMs?: number;
  /**
   * How long one request may keep waiting out a busy server's Retry-After (429/503) before those
   * waits count as failed attempts (default 30 min).
   */
  maxBusyWaitMs?: number;
  /** How often to poll a finalizing upload (default 500 ms). */
  pollIntervalMs?: number;
}

export class HttpError extends Error {
  readonly status: number;
  /** Seconds from a Retry-After header, if any. */
  readonly retryAfterSeconds: number | null;
  constructor(status: number, message: string, retryAfterSeconds: number | null = null) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class NetworkError extends Error {
  constructor(message = "network error") {
    super(message);
    this.name = "NetworkError";
  }
}

/** A file picked to resume an upload is not the file that upload was started with. */
export class ResumeMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ResumeMismatchError";
  }
}

export interface UploadEngine {
  /** Start uploading a new file; returns its local id. */
  start(file: File): string;
  /**
   * Continue an unfinished server upload (from this or another device) with the file the user
   * picked again. The file must match name and size, and the hash of every stored chunk, before
   * anything is sent (rejects with {@link ResumeMismatchError}); only missing chunks are sent.
   * While the chunks are checked the upload is "hashing" and its progress counts the bytes checked.
   */
  resumeWith(file: File, upload: UploadView): Promise<string>;
  pause(id: string): void;
  resume(id: string): void;
  /** Stop and DELETE the server session. */
  cancel(id: string): Promise<void>;
  retry(id: string): void;
  /** Forget a finished (completed, failed or cancelled) upload. */
  remove(id: string): void;
  snapshots(): UploadSnapshot[];
  /** Called with all snapshots on every change; returns an unsubscribe function. */
  subscribe(listener: (snapshots: UploadSnapshot[]) => void): () => void;
  /** Stop everything (page unload, tests). */
  dispose(): void;
}
