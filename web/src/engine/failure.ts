// Why an upload stopped, in words a user can act on. Errors are mapped to words here only.

import { INSUFFICIENT_STORAGE } from "./backoff";
import { HttpError, NetworkError, ResumeMismatchError } from "./types";

/** The sign-in could not be renewed (refresh rejected, or still 401 after a refresh). */
export class SessionEndedError extends Error {
  constructor() {
    super("Your session ended; sign in again");
    this.name = "SessionEndedError";
  }
}

/** A request kept failing with transient errors until the attempts ran out. */
export class AttemptsExhaustedError extends Error {
  readonly lastError: unknown;
  constructor(lastError: unknown, attempts: number) {
    super(`gave up after ${attempts} attempts`);
    this.name = "AttemptsExhaustedError";
    this.lastError = lastError;
  }
}

/** A failure the engine already phrased for the user (e.g. the server gave up assembling the file). */
export class UploadFailure extends Error {
  readonly canRetry: boolean;
  constructor(message: string, canRetry: boolean) {
    super(message);
    this.name = "UploadFailure";
    this.canRetry = canRetry;
  }
}

/** The server already holds other bytes for chunk `n` (409): the file is not what it was. */
export class FileChangedError extends UploadFailure {
  constructor(n: number) {
    super(`The file changed since the upload started: chunk ${n} differs from the part already uploaded`, false);
    this.name = "FileChangedError";
  }
}

/** The server's disk is full (507): worth resuming later, not retrying now. */
export function isStorageFull(error: unknown): error is HttpError {
  return error instanceof HttpError && error.status === INSUFFICIENT_STORAGE;
}

/** Why an upload was paused for a full disk, with the server's own words. */
export function storageFullMessage(error: HttpError): string {
  return `The server is out of storage space (${error.message}); resume the upload once space is free`;
}

export interface FailureReason {
  message: string;
  canRetry: boolean;
}

export function describeFailure(error: unknown): FailureReason {
  if (error instanceof UploadFailure) return { message: error.message, canRetry: error.canRetry };
  if (error instanceof ResumeMismatchError) return { message: error.message, canRetry: false };
  if (error instanceof SessionEndedError || (error instanceof HttpError && error.status === 401)) {
    return { message: new SessionEndedError().message, canRetry: true };
  }
  if (error instanceof AttemptsExhaustedError) return { message: exhausted(error.lastError), canRetry: true };
  if (error instanceof HttpError) return { message: refusal(error), canRetry: false };
  if (error instanceof NetworkError) return { message: "The connection to the server failed", canRetry: true };
  if (error instanceof DOMException && (error.name === "NotReadableError" || error.name === "NotFoundError")) {
    // Browsers refuse to read a picked file that was changed, moved or deleted since.
    return { message: "The file can no longer be read; was it changed or moved? Pick it again", canRetry: false };
  }
  const detail = error instanceof Error ? error.message : String(error);
  return { message: `Something went wrong: ${detail}`, canRetry: true };
}

function exhausted(lastError: unknown): string {
  if (lastError instanceof HttpError) {
    return `The server kept failing (${lastError.status}: ${lastError.message}); try again later`;
  }
  return "The connection kept failing; try again when it is stable";
}

function refusal(error: HttpError): string {
  const detail = error.message;
  switch (error.status) {
    case 400:
      return `The server rejected the upload: ${detail}`;
    case 403:
      return `The server refused access: ${detail}`;
    case 404:
      return "This upload no longer exists";
    case 409:
      return `The server refused the chunk: ${detail}`;
    case 410:
      return "This upload has expired or was cancelled";
    case 413:
      return `The file is too large: ${detail}`;
    case 415:
      return `This type of file is not accepted: ${detail}`;
    case 422:
      return "The file changed while it was being uploaded";
    case INSUFFICIENT_STORAGE:
      return `The server is out of storage space: ${detail}`;
    default:
      return `The server refused the upload (${error.status}: ${detail})`;
  }
}
