import { describe, expect, it } from "vitest";
import {
  AttemptsExhaustedError,
  describeFailure,
  FileChangedError,
  isStorageFull,
  SessionEndedError,
  storageFullMessage,
  UploadFailure,
} from "./failure";
import { HttpError, NetworkError, ResumeMismatchError } from "./types";

describe("describeFailure", () => {
  it("says a file that can no longer be read must be picked again, and offers no retry", () => {
    const reason = describeFailure(new DOMException("hashing failed: gone", "NotReadableError"));
    expect(reason).toEqual({ message: expect.stringMatching(/can no longer be read/), canRetry: false });
  });

  it("tells apart a server that kept failing from a connection that kept failing", () => {
    expect(describeFailure(new AttemptsExhaustedError(new HttpError(503, "storage down"), 8))).toEqual({
      message: "The server kept failing (503: storage down); try again later",
      canRetry: true,
    });
    expect(describeFailure(new AttemptsExhaustedError(new NetworkError(), 8)).message).toMatch(/connection kept failing/);
  });

  it("asks to sign in again for an ended session, however it surfaced", () => {
    for (const error of [new SessionEndedError(), new HttpError(401, "not signed in")]) {
      expect(describeFailure(error)).toEqual({ message: "Your session ended; sign in again", canRetry: true });
    }
  });

  it("passes through reasons the engine already phrased", () => {
    expect(describeFailure(new UploadFailure("This upload was cancelled", false))).toEqual({
      message: "This upload was cancelled",
      canRetry: false,
    });
  });

  it("says a file that no longer matches what was uploaded changed, and offers no retry", () => {
    expect(describeFailure(new FileChangedError(3))).toEqual({
      message: "The file changed since the upload started: chunk 3 differs from the part already uploaded",
      canRetry: false,
    });
    expect(describeFailure(new ResumeMismatchError("The file has changed"))).toEqual({
      message: "The file has changed",
      canRetry: false,
    });
  });

  it("passes on the server's words about a full disk", () => {
    const full = new HttpError(507, "no space left on the upload volume");
    expect(isStorageFull(full)).toBe(true);
    expect(isStorageFull(new HttpError(503, "busy"))).toBe(false);
    expect(storageFullMessage(full)).toBe(
      "The server is out of storage space (no space left on the upload volume); resume the upload once space is free",
    );
    expect(describeFailure(full).message).toBe("The server is out of storage space: no space left on the upload volume");
  });

  it("still says something for an unexpected error", () => {
    expect(describeFailure(new TypeError("x is undefined"))).toEqual({
      message: "Something went wrong: x is undefined",
      canRetry: true,
    });
  });
});
