import { afterEach, describe, expect, it, vi } from "vitest";
import { PROGRESS_INTERVAL_MS, UploadManager } from "./manager";
import { sha256Hex } from "./digest";
import {
  alteredCopy,
  deferred,
  FakeClock,
  FakeConnectivity,
  FakeHasher,
  FakeServer,
  makeFile,
  tick,
  until,
  type Deferred,
} from "./test-fakes";
import {
  HttpError,
  NetworkError,
  ResumeMismatchError,
  type EngineOptions,
  type UploadSnapshot,
  type UploadState,
} from "./types";

const POLL_MS = 5;
const engines: UploadManager[] = [];

afterEach(() => {
  for (const engine of engines.splice(0)) engine.dispose();
  vi.restoreAllMocks();
});

function setup(options: EngineOptions = {}) {
  // Jitter is pinned so backoff delays are known (tests that care set their own value).
  vi.spyOn(Math, "random").mockReturnValue(0.5);
  const server = new FakeServer();
  const hasher = new FakeHasher();
  const connectivity = new FakeConnectivity();
  const clock = new FakeClock();
  server.connectivity = connectivity;
  const engine = new UploadManager(server, hasher, connectivity, { pollIntervalMs: POLL_MS, ...options }, clock);
  engines.push(engine);
  const history: UploadSnapshot[][] = [];
  engine.subscribe((snapshots) => history.push(snapshots));
  const snap = (id: string): UploadSnapshot => {
    const found = engine.snapshots().find((s) => s.id === id);
    if (found === undefined) throw new Error(`no snapshot for ${id}`);
    return found;
  };
  const reaches = (id: string, state: UploadState) => until(() => snap(id).state === state, `${id} to be ${state}`);
  const uploadId = (id: string): string => {
    const value = snap(id).uploadId;
    if (value === null) throw new Error(`${id} has no server session`);
    return value;
  };
  /** Delays the engine slept for between attempts (not progress throttling or polling). */
  const backoffs = () => clock.sleeps.filter((ms) => ms !== PROGRESS_INTERVAL_MS && ms !== POLL_MS);
  /** Every published snapshot of one upload, in order. */
  const timeline = (id: string) => history.flatMap((all) => all.filter((s) => s.id === id));
  return { server, hasher, connectivity, clock, engine, history, snap, reaches, uploadId, backoffs, timeline };
}

function expectNonDecreasing(values: number[]): void {
  for (let i = 1; i < values.length; i += 1) {
    expect(values[i], `value ${i} of ${JSON.stringify(values)}`).toBeGreaterThanOrEqual(values[i - 1]!);
  }
}

describe("a plain upload", () => {
  it("creates the session from the file, sends every chunk and completes when the server says so", async () => {
    const t = setup();
    t.server.pollsBeforeComplete = 2;
    const file = makeFile(10, "report.pdf", 0, "application/pdf");
    const id = t.engine.start(file);
    await t.reaches(id, "completed");

    const upload = t.uploadId(id);
    expect(t.server.calls[0]).toBe("POST /uploads");
    expect(t.server.session(upload).view).toMatchObject({ file_name: "report.pdf", file_type: "application/pdf", file_size: 10 });
    expect(t.server.stored(upload)).toEqual([1, 2, 3]);
    // Polled through two "finalizing" answers before "completed", sleeping between polls.
    expect(t.server.calls.filter((c) => c === `GET ${upload}`)).toHaveLength(3);
    expect(t.clock.sleeps.filter((ms) => ms === POLL_MS)).toHaveLength(2);
    const states = t.timeline(id).map((s) => s.state);
    expect(states.indexOf("finalizing")).toBeGreaterThan(states.indexOf("uploading"));
    expect(states.filter((s) => s === "completed").length).toBe(states.length - states.indexOf("completed"));
    expect(t.snap(id)).toMatchObject({ fileId: `file-${upload}`, progress: 1, bytesDone: 10, chunksDone: 3, error: null });
  });

  it("stays finalizing until the server says completed", async () => {
    const t = setup();
    t.server.pollsBeforeComplete = 1_000_000;
    const id = t.engine.start(makeFile(8));
    await t.reaches(id, "finalizing");
    await until(() => t.server.calls.filter((c) => c.startsWith("GET ")).length >= 5, "several polls");
    expect(t.snap(id).state).toBe("finalizing");
    expect(t.snap(id).fileId).toBeNull();
  });

  it("fails with the server's reason when assembling fails", async () => {
    const t = setup();
    t.server.pollsBeforeComplete = 1_000_000;
    const id = t.engine.start(makeFile(8));
    await t.reaches(id, "finalizing");
    const session = t.server.session(t.uploadId(id));
    session.view = { ...session.view, status: "failed" };
    await t.reaches(id, "failed");
    expect(t.snap(id).error).toBe("The server could not assemble the file");
  });

  it("says why the server could not assemble the file when it gives a reason", async () => {
    const t = setup();
    t.server.pollsBeforeComplete = 1_000_000;
    const id = t.engine.start(makeFile(8));
    await t.reaches(id, "finalizing");
    const session = t.server.session(t.uploadId(id));
    session.view = { ...session.view, status: "failed", failure_reason: "chunk 3 is missing" };
    await t.reaches(id, "failed");
    expect(t.snap(id)).toMatchObject({
      error: "The server could not assemble the file: chunk 3 is missing",
      canRetry: false,
    });
  });

  it("cuts the file where the server says, slicing chunk by chunk", async () => {
    const t = setup();
    t.server.chunkSize = 3;
    const id = t.engine.start(makeFile(10));
    await t.reaches(id, "completed");
    const sizes = new Map(t.server.puts.map((p) => [p.n, p.size]));
    expect([...sizes.entries()].sort((a, b) => a[0] - b[0])).toEqual([[1, 3], [2, 3], [3, 3], [4, 1]]);
    expect(t.snap(id)).toMatchObject({ chunkSize: 3, totalChunks: 4 });
    // Each chunk is hashed on its own slice, never the whole file.
    expect(Math.max(...t.hasher.hashed.map((b) => b.size))).toBe(3);
  });

  it("publishes frozen snapshots in start order and stops notifying after unsubscribe", async () => {
    const t = setup();
    const first = t.engine.start(makeFile(4, "a.bin"));
    const second = t.engine.start(makeFile(4, "b.bin"));
    const snapshots = t.engine.snapshots();
    expect(snapshots.map((s) => s.id)).toEqual([first, second]);
    expect(Object.isFrozen(snapshots)).toBe(true);
    expect(Object.isFrozen(snapshots[0])).toBe(true);
    let calls = 0;
    const unsubscribe = t.engine.subscribe(() => (calls += 1));
    await t.reaches(first, "completed");
    expect(calls).toBeGreaterThan(0);
    unsubscribe();
    const before = calls;
    t.engine.pause(second);
    t.engine.resume(second);
    expect(calls).toBe(before);
  });
});

describe("retry policy", () => {
  it.each([
    ["500", () => new HttpError(500, "boom")],
    ["502", () => new HttpError(502, "bad gateway")],
    ["503", () => new HttpError(503, "down")],
    ["408", () => new HttpError(408, "timeout")],
    ["429", () => new HttpError(429, "slow down")],
    ["a network error", () => new NetworkError()],
  ])("retries a chunk after %s", async (_label, error) => {
    const t = setup();
    t.server.onPut = (n, attempt) => (n === 2 && attempt <= 2 ? error() : undefined);
    const id = t.engine.start(makeFile(12));
    await t.reaches(id, "completed");
    expect(t.server.putNumbers(t.uploadId(id)).filter((n) => n === 2)).toHaveLength(3);
    expect(t.backoffs()).toHaveLength(2);
  });

  it.each([
    [400, "The server rejected the upload: nope"],
    [403, "The server refused access: nope"],
    [404, "This upload no longer exists"],
    [409, "The file changed since the upload started: chunk 2 differs from the part already uploaded"],
    [410, "This upload has expired or was cancelled"],
    [413, "The file is too large: nope"],
    [415, "This type of file is not accepted: nope"],
  ])("fails at once on %i with a plain reason", async (status, reason) => {
    const t = setup();
    t.server.onPut = (n) => (n === 2 ? new HttpError(status, "nope") : undefined);
    const id = t.engine.start(makeFile(12));
    await t.reaches(id, "failed");
    expect(t.server.putNumbers(t.uploadId(id)).filter((n) => n === 2)).toHaveLength(1);
    expect(t.backoffs()).toEqual([]);
    expect(t.snap(id)).toMatchObject({ error: reason, canRetry: false });
  });

  it("fails a session the server refuses to create", async () => {
    const t = setup();
    t.server.onCall = (call) => (call === "POST /uploads" ? new HttpError(413, "storage quota exceeded") : undefined);
    const id = t.engine.start(makeFile(12));
    await t.reaches(id, "failed");
    expect(t.snap(id)).toMatchObject({ error: "The file is too large: storage quota exceeded", uploadId: null });
    expect(t.server.puts).toEqual([]);
  });

  it("gives up after maxAttempts and retry() sends only what the server lacks", async () => {
    const t = setup({ maxAttempts: 3, concurrency: 1 });
    let broken = true;
    t.server.onPut = (n) => (broken && n === 2 ? new HttpError(500, "disk full") : undefined);
    const id = t.engine.start(makeFile(16));
    await t.reaches(id, "failed");
    const upload = t.uploadId(id);
    expect(t.server.putNumbers(upload)).toEqual([1, 2, 2, 2]);
    expect(t.snap(id)).toMatchObject({ canRetry: true });
    expect(t.snap(id).error).toMatch(/kept failing \(500: disk full\)/);

    broken = false;
    const callsBefore = t.server.calls.length;
    const putsBefore = t.server.puts.length;
    t.engine.retry(id);
    await t.reaches(id, "completed");
    expect(t.server.calls.slice(callsBefore, callsBefore + 2)).toEqual([`GET ${upload}`, `GET ${upload}/chunks`]);
    expect(t.server.putNumbers(upload, putsBefore)).toEqual([2, 3, 4]);
  });

  it("retry() is refused for failures a retry cannot fix", async () => {
    const t = setup();
    t.server.onPut = () => new HttpError(403, "not yours");
    const id = t.engine.start(makeFile(4));
    await t.reaches(id, "failed");
    t.engine.retry(id);
    await tick();
    expect(t.snap(id).state).toBe("failed");
    expect(t.server.puts).toHaveLength(1);
  });
});

describe("a server out of storage space (507)", () => {
  it("pauses the upload with the server's words instead of retrying, and resuming clears them", async () => {
    const t = setup({ concurrency: 1 });
    let full = true;
    t.server.onPut = (n) => (full && n === 2 ? new HttpError(507, "the disk holding uploads is full") : undefined);
    const id = t.engine.start(makeFile(12));
    await t.reaches(id, "paused");
    const upload = t.uploadId(id);
    expect(t.snap(id).error).toBe(
      "The server is out of storage space (the disk holding uploads is full); resume the upload once space is free",
    );
    for (let i = 0; i < 10; i += 1) await tick();
    expect(t.server.putNumbers(upload)).toEqual([1, 2]);
    expect(t.backoffs()).toEqual([]);
    expect(t.snap(id).state).toBe("paused");

    full = false;
    t.engine.resume(id);
    expect(t.snap(id)).toMatchObject({ state: "uploading", error: null });
    await t.reaches(id, "completed");
    expect(t.server.putNumbers(upload)).toEqual([1, 2, 2, 3]);
    expect(t.snap(id).error).toBeNull();
  });

  it("pauses every chunk in flight, not only the one refused", async () => {
    const t = setup({ concurrency: 3 });
    const gate = deferred();
    t.server.onPut = (n) => (n === 1 ? new HttpError(507, "no space left") : gate.promise);
    const id = t.engine.start(makeFile(16));
    await t.reaches(id, "paused");
    expect(t.server.puts.every((p) => p.signal.aborted || p.n === 1)).toBe(true);
    gate.resolve();
    for (let i = 0; i < 10; i += 1) await tick();
    expect(t.snap(id).state).toBe("paused");
  });
});

describe("a busy server (429 or 503 with Retry-After)", () => {
  it.each([
    [429, "too many chunk uploads at once"],
    [503, "the server is busy"],
  ])("is waited out on %i as long as it asks, without using up attempts", async (status, message) => {
    const t = setup({ maxAttempts: 3, concurrency: 1 });
    t.server.onPut = (n, attempt) => (n === 1 && attempt <= 20 ? new HttpError(status, message, 2) : undefined);
    const id = t.engine.start(makeFile(8));
    await t.reaches(id, "completed");
    expect(t.server.putNumbers(t.uploadId(id))).toEqual([...Array<number>(21).fill(1), 2]);
    expect(t.backoffs()).toEqual(Array<number>(20).fill(2000));
  });

  it("stops waiting when the upload is paused", async () => {
    const t = setup({ concurrency: 1 });
    t.clock.hold();
    t.server.onPut = (_n, attempt) => (attempt === 1 ? new HttpError(503, "busy", 60) : undefined);
    const id = t.engine.start(makeFile(4));
    await until(() => t.backoffs().length === 1, "the Retry-After wait");
    expect(t.backoffs()).toEqual([60_000]);
    t.engine.pause(id);
    for (let i = 0; i < 10; i += 1) await tick();
    expect(t.server.puts).toHaveLength(1);
    expect(t.snap(id).state).toBe("paused");
    t.clock.release();
    t.engine.resume(id);
    await t.reaches(id, "completed");
    expect(t.server.puts).toHaveLength(2);
  });

  it("counts the waits as failed attempts once maxBusyWaitMs is used up", async () => {
    const t = setup({ maxAttempts: 2, maxBusyWaitMs: 5000, concurrency: 1 });
    t.server.onPut = () => new HttpError(503, "busy", 2);
    const id = t.engine.start(makeFile(4));
    await t.reaches(id, "failed");
    // Two free waits (4 s of the 5 s allowed), then two counted attempts.
    expect(t.server.puts).toHaveLength(4);
    expect(t.backoffs()).toEqual([2000, 2000, 2000]);
    expect(t.snap(id)).toMatchObject({ canRetry: true });
    expect(t.snap(id).error).toMatch(/kept failing \(503: busy\)/);
  });
});

describe("backoff", () => {
  it("grows exponentially with full jitter and is capped at maxDelayMs", async () => {
    const t = setup({ baseDelayMs: 1000, maxDelayMs: 3000, maxAttempts: 10, concurrency: 1 });
    t.server.onPut = (_n, attempt) => (attempt <= 5 ? new HttpError(500, "boom") : undefined);
    const id = t.engine.start(makeFile(4));
    await t.reaches(id, "completed");
    // random() (0.5, pinned by setup) * min(3000, 1000 * 2^k) for k = 0..4
    expect(t.backoffs()).toEqual([500, 1000, 1500, 1500, 1500]);
  });

  it("never waits longer than the jitter ceiling", async () => {
    const t = setup({ baseDelayMs: 100, maxDelayMs: 250, maxAttempts: 10, concurrency: 1 });
    vi.spyOn(Math, "random").mockReturnValue(0.999999);
    t.server.onPut = (_n, attempt) => (attempt <= 3 ? new NetworkError() : undefined);
    const id = t.engine.start(makeFile(4));
    await t.reaches(id, "completed");
    expect(t.clock.sleeps.filter((ms) => ms !== POLL_MS && ms !== PROGRESS_INTERVAL_MS)).toEqual([99, 199, 249]);
  });

  it("waits exactly Retry-After on 429 and 503, even beyond maxDelayMs, and ignores it on 500", async () => {
    const t = setup({ baseDelayMs: 1000, maxDelayMs: 3000, concurrency: 1 });
    const answers = [new HttpError(429, "slow down", 7), new HttpError(503, "busy", 2), new HttpError(500, "boom", 9)];
    t.server.onPut = (_n, attempt) => answers[attempt - 1];
    const id = t.engine.start(makeFile(4));
    await t.reaches(id, "completed");
    // The 500 backs off as usual, as the first failed attempt (the waits before it were not
    // failures): random() * min(3000, 1000 * 2^0).
    expect(t.backoffs()).toEqual([7000, 2000, 500]);
  });
});

describe("pause and resume", () => {
  it("aborts the chunks in flight, counts no failed attempt, and resends only what is missing", async () => {
    const t = setup({ concurrency: 2, maxAttempts: 1 });
    const gate = deferred();
    t.server.onPut = (n) => (n >= 2 ? gate.promise : undefined);
    const id = t.engine.start(makeFile(16));
    await until(() => t.server.puts.length === 3 && t.server.inFlight === 2, "chunk 1 stored, 2 and 3 in flight");
    const upload = t.uploadId(id);
    expect(t.server.stored(upload)).toEqual([1]);
    const inFlight = t.server.puts.filter((p) => p.n >= 2);

    t.engine.pause(id);
    expect(t.snap(id).state).toBe("paused");
    expect(inFlight.map((p) => p.signal.aborted)).toEqual([true, true]);
    await until(() => t.server.inFlight === 0, "aborted requests to end");
    const putsAtPause = t.server.puts.length;
    for (let i = 0; i < 10; i += 1) await tick();
    expect(t.server.puts.length).toBe(putsAtPause);
    expect(t.snap(id)).toMatchObject({ state: "paused", error: null });

    gate.resolve();
    const callsBefore = t.server.calls.length;
    t.engine.resume(id);
    await t.reaches(id, "completed");
    expect(t.server.calls.slice(callsBefore, callsBefore + 2)).toEqual([`GET ${upload}`, `GET ${upload}/chunks`]);
    expect(t.server.putNumbers(upload, putsAtPause).sort()).toEqual([2, 3, 4]);
  });

  it("pauses and resumes a queued upload without touching the server", async () => {
    const t = setup({ parallelUploads: 1 });
    const gate = deferred();
    t.server.onPut = () => gate.promise;
    const first = t.engine.start(makeFile(4, "a.bin"));
    const second = t.engine.start(makeFile(4, "b.bin"));
    expect(t.snap(second).state).toBe("queued");
    t.engine.pause(second);
    expect(t.snap(second).state).toBe("paused");
    t.engine.resume(second);
    expect(t.snap(second).state).toBe("queued");
    gate.resolve();
    await t.reaches(first, "completed");
    await t.reaches(second, "completed");
  });
});

describe("progress", () => {
  it("never goes backwards through failures, a re-hash and a pause, and ends at 1", async () => {
    const t = setup({ concurrency: 3 });
    t.server.progressSteps = 4;
    const gate = deferred();
    t.server.onPut = (n, attempt) => {
      if (attempt === 1 && n % 2 === 0) return new HttpError(500, "boom");
      if (attempt === 1 && n === 5) return new NetworkError();
      if (n === 7 && attempt === 1) return gate.promise;
      return undefined;
    };
    t.hasher.lies = 1;
    const id = t.engine.start(makeFile(40));
    await until(() => t.server.puts.some((p) => p.n === 7) && t.server.inFlight > 0, "chunk 7 to be in flight");
    t.engine.pause(id);
    gate.resolve();
    t.engine.resume(id);
    await t.reaches(id, "completed");

    const timeline = t.timeline(id);
    expectNonDecreasing(timeline.map((s) => s.bytesDone));
    expectNonDecreasing(timeline.map((s) => s.progress));
    // In-flight bytes were reported (not only whole chunks), and it ends at exactly 1.
    expect(timeline.some((s) => s.bytesDone % 4 !== 0)).toBe(true);
    expect(timeline.at(-1)).toMatchObject({ progress: 1, bytesDone: 40, chunksDone: 10 });
  });

  it("publishes progress at most every PROGRESS_INTERVAL_MS but state changes at once", async () => {
    const t = setup();
    t.clock.hold();
    t.server.progressSteps = 50;
    const gate = deferred();
    t.server.onPut = () => gate.promise;
    const id = t.engine.start(makeFile(100, "one-chunk.bin"));
    t.server.chunkSize = 100;
    await until(() => t.server.inFlight === 1, "the chunk to be in flight");
    for (let i = 0; i < 5; i += 1) await tick();
    const published = t.timeline(id);
    // queued, uploading, session created: each at once...
    expect(published.map((s) => s.state).slice(0, 2)).toEqual(["queued", "uploading"]);
    // ...but 49 progress reports produced at most one notification while the throttle timer waits.
    const progressNotifications = published.filter((s, i) => i > 0 && s.bytesDone !== published[i - 1]!.bytesDone);
    expect(progressNotifications.length).toBeLessThanOrEqual(1);
    expect(t.clock.pendingSleeps).toBe(1);
    t.clock.release();
    await until(() => t.snap(id).bytesDone === 98, "the trailing progress notification");
    gate.resolve();
    await t.reaches(id, "completed");
  });
});

describe("bounded concurrency", () => {
  it.each([[1], [3], [4]])("keeps %i chunks in flight at most, and uses them", async (concurrency) => {
    const t = setup({ concurrency });
    const id = t.engine.start(makeFile(48));
    await t.reaches(id, "completed");
    expect(t.server.maxInFlight).toBe(concurrency);
  });

  it("defaults to 4 chunks in flight", async () => {
    const t = setup();
    const id = t.engine.start(makeFile(48));
    await t.reaches(id, "completed");
    expect(t.server.maxInFlight).toBe(4);
  });

  it("runs at most parallelUploads uploads; the rest wait queued without a session", async () => {
    const t = setup({ parallelUploads: 2 });
    const gate = deferred();
    t.server.onPut = () => gate.promise;
    const ids = [makeFile(8, "a"), makeFile(8, "b"), makeFile(8, "c")].map((f) => t.engine.start(f));
    await until(() => t.server.inFlight === 4, "both running uploads to send their chunks");
    expect(ids.map((id) => t.snap(id).state)).toEqual(["uploading", "uploading", "queued"]);
    expect(t.server.calls.filter((c) => c === "POST /uploads")).toHaveLength(2);

    // A paused upload frees its slot.
    t.engine.pause(ids[0]!);
    await until(() => t.snap(ids[2]!).state === "uploading" && t.server.calls.filter((c) => c === "POST /uploads").length === 3, "the third to start");
    gate.resolve();
    await t.reaches(ids[1]!, "completed");
    await t.reaches(ids[2]!, "completed");
    expect(t.snap(ids[0]!).state).toBe("paused");
  });

  it("lets the next upload start while one is finalizing", async () => {
    const t = setup({ parallelUploads: 1 });
    t.server.pollsBeforeComplete = 1_000_000;
    const first = t.engine.start(makeFile(4, "a"));
    const second = t.engine.start(makeFile(4, "b"));
    await t.reaches(first, "finalizing");
    await t.reaches(second, "finalizing");
  });
});

describe("resumeWith", () => {
  it("checks the stored chunks, then sends only the missing chunks, starting from the stored bytes", async () => {
    const t = setup();
    const file = makeFile(18, "movie.mkv");
    const view = await t.server.seed(file, [1, 3]);
    const id = await t.engine.resumeWith(file, view);
    expect(t.snap(id).bytesDone).toBe(8);
    expect(t.hasher.hashed[0]!.size).toBe(4);
    await t.reaches(id, "completed");
    expect(t.server.calls.filter((c) => c === "POST /uploads")).toEqual([]);
    expect(t.server.putNumbers(view.upload_id).sort()).toEqual([2, 4, 5]);
    expect(t.timeline(id)[0]).toMatchObject({ state: "hashing", uploadId: view.upload_id });
    expectNonDecreasing(t.timeline(id).map((s) => s.bytesDone));
    expect(t.snap(id)).toMatchObject({ progress: 1, chunksDone: 5 });
  });

  it.each([
    ["name", makeFile(18, "other.mkv"), /upload is for "movie.mkv" but you picked "other.mkv"/],
    ["size", makeFile(17, "movie.mkv"), /had 18 bytes but the picked file has 17/],
    ["content", makeFile(18, "movie.mkv", 1), /The file has changed: its content differs from what was already uploaded/],
  ])("rejects a file with a different %s and sends nothing", async (_what, picked, message) => {
    const t = setup();
    const view = await t.server.seed(makeFile(18, "movie.mkv"), [2]);
    const attempt = t.engine.resumeWith(picked, view);
    await expect(attempt).rejects.toBeInstanceOf(ResumeMismatchError);
    await expect(attempt).rejects.toThrow(message);
    for (let i = 0; i < 5; i += 1) await tick();
    expect(t.server.puts).toEqual([]);
    expect(t.engine.snapshots()).toEqual([]);
  });

  it("goes straight to polling for a session that is already finalizing", async () => {
    const t = setup();
    const file = makeFile(8, "done.bin");
    const view = await t.server.seed(file, [1, 2], "finalizing");
    const id = await t.engine.resumeWith(file, view);
    await t.reaches(id, "completed");
    expect(t.server.puts).toEqual([]);
    expect(t.server.calls).not.toContain(`GET ${view.upload_id}/chunks`);
    expect(t.snap(id)).toMatchObject({ fileId: `file-${view.upload_id}`, progress: 1 });
  });

  it("refuses to continue the same session twice at once", async () => {
    const t = setup();
    const gate = deferred();
    t.server.onPut = () => gate.promise;
    const file = makeFile(8, "twice.bin");
    const view = await t.server.seed(file, [1]);
    await t.engine.resumeWith(file, view);
    await expect(t.engine.resumeWith(file, view)).rejects.toThrow("already being continued");
    expect(t.engine.snapshots()).toHaveLength(1);
    gate.resolve();
  });

  it("can be cancelled while the picked file is being checked", async () => {
    const t = setup();
    const gate = deferred();
    const file = makeFile(8, "slow.bin");
    const view = await t.server.seed(file, [1]);
    t.server.onCall = (call) => (call.endsWith("/chunks") ? gate.promise : undefined);
    const resuming = t.engine.resumeWith(file, view);
    const id = t.engine.snapshots()[0]!.id;
    expect(t.snap(id).state).toBe("hashing");
    await t.engine.cancel(id);
    gate.resolve();
    await expect(resuming).resolves.toBe(id);
    expect(t.snap(id).state).toBe("cancelled");
    expect(t.server.calls).toContain(`DELETE ${view.upload_id}`);
    expect(t.server.puts).toEqual([]);
  });

  it("rejects a session that has expired", async () => {
    const t = setup();
    const file = makeFile(8, "old.bin");
    const view = await t.server.seed(file, [1], "expired");
    await expect(t.engine.resumeWith(file, view)).rejects.toThrow("This upload expired before it was finished");
    expect(t.engine.snapshots()).toEqual([]);
  });

  it("resumes a session with nothing stored yet without a content check", async () => {
    const t = setup();
    const file = makeFile(8, "fresh.bin");
    const view = await t.server.seed(file, [], "pending");
    const id = await t.engine.resumeWith(file, view);
    await t.reaches(id, "completed");
    expect(t.server.putNumbers(view.upload_id).sort()).toEqual([1, 2]);
  });

  it("rejects a session the server could not assemble, with the server's reason", async () => {
    const t = setup();
    const file = makeFile(8, "broken.bin");
    const view = await t.server.seed(file, [1, 2], "failed");
    const attempt = t.engine.resumeWith(file, { ...view, failure_reason: "chunk 2 is missing" });
    await expect(attempt).rejects.toThrow("The server could not assemble the file: chunk 2 is missing");
    expect(t.engine.snapshots()).toEqual([]);
  });
});

describe("resumeWith checks every stored chunk", () => {
  /** Hold each hash until the test lets it go. */
  function holdHashes(t: ReturnType<typeof setup>): Deferred[] {
    const held: Deferred[] = [];
    t.hasher.onHash = () => {
      const gate = deferred();
      held.push(gate);
      return gate.promise;
    };
    return held;
  }

  it("refuses a file whose last stored chunk differs, and sends nothing", async () => {
    const t = setup();
    const original = makeFile(22, "movie.mkv");
    const view = await t.server.seed(original, [1, 2, 3, 4]);
    // Chunks 1 to 3 are equal; only chunk 4 (bytes 12 to 15) differs.
    const picked = await alteredCopy(original, 13);
    const attempt = t.engine.resumeWith(picked, view);
    await expect(attempt).rejects.toBeInstanceOf(ResumeMismatchError);
    await expect(attempt).rejects.toThrow("The file has changed: its content differs from what was already uploaded");
    for (let i = 0; i < 10; i += 1) await tick();
    expect(t.server.puts).toEqual([]);
    expect(t.engine.snapshots()).toEqual([]);
    expect(t.server.stored(view.upload_id)).toEqual([1, 2, 3, 4]);
  });

  it("hashes every stored chunk before the first PUT, then sends only the missing ones", async () => {
    const t = setup();
    const file = makeFile(20, "movie.mkv");
    const view = await t.server.seed(file, [1, 2, 4]);
    t.hasher.onHash = () => {
      t.server.calls.push("hash");
      return undefined;
    };
    const id = await t.engine.resumeWith(file, view);
    await t.reaches(id, "completed");

    const calls = t.server.calls;
    const firstPut = calls.findIndex((c) => c.startsWith("PUT "));
    expect(calls.slice(0, 4)).toEqual([`GET ${view.upload_id}/chunks`, "hash", "hash", "hash"]);
    expect(firstPut).toBeGreaterThan(3);
    const checked = await Promise.all(t.hasher.hashed.slice(0, 3).map((blob) => sha256Hex(blob)));
    const storedHashes = [1, 2, 4].map((n) => t.server.session(view.upload_id).stored.get(n));
    expect(checked.sort()).toEqual(storedHashes.sort());
    expect(t.server.putNumbers(view.upload_id).sort()).toEqual([3, 5]);
  });

  it("shows the check as progress that only grows and reaches the bytes checked", async () => {
    const t = setup({ concurrency: 1 });
    const file = makeFile(24, "movie.mkv");
    const view = await t.server.seed(file, [1, 2, 3, 4]);
    const held = holdHashes(t);
    const resuming = t.engine.resumeWith(file, view);
    const id = t.engine.snapshots()[0]!.id;
    for (let k = 1; k <= 4; k += 1) {
      await until(() => held.length === k, `chunk ${k} to be hashed`);
      await until(() => t.snap(id).bytesDone === (k - 1) * 4, `${(k - 1) * 4} bytes checked`);
      expect(t.snap(id).state).toBe("hashing");
      if (k === 4) t.hasher.onHash = () => undefined;
      held[k - 1]!.resolve();
    }
    await resuming;

    const checking = t.timeline(id).filter((s) => s.state === "hashing");
    expectNonDecreasing(checking.map((s) => s.bytesDone));
    expectNonDecreasing(checking.map((s) => s.progress));
    expect(new Set(checking.map((s) => s.bytesDone))).toEqual(new Set([0, 4, 8, 12, 16]));
    expect(checking.at(-1)).toMatchObject({ bytesDone: 16, progress: 16 / 24, chunksDone: 4 });
    await t.reaches(id, "completed");
    expectNonDecreasing(t.timeline(id).map((s) => s.bytesDone));
    expect(t.server.putNumbers(view.upload_id).sort()).toEqual([5, 6]);
  });

  it("sends again a stored chunk whose hash the server does not know", async () => {
    const t = setup();
    const file = makeFile(16, "movie.mkv");
    const view = await t.server.seed(file, [1, 2, 3]);
    t.server.session(view.upload_id).hashUnknown.add(2);
    const id = await t.engine.resumeWith(file, view);
    // Only the chunks that could be checked count as stored.
    expect(t.snap(id)).toMatchObject({ bytesDone: 8, chunksDone: 2 });
    await t.reaches(id, "completed");
    // The unchecked chunk goes first (the server answers "already stored" for the same bytes).
    expect(t.server.putNumbers(view.upload_id)).toEqual([2, 4]);
  });

  it("fails without retrying when the server holds other bytes for a chunk it could not vouch for (409)", async () => {
    const t = setup();
    const original = makeFile(16, "movie.mkv");
    const view = await t.server.seed(original, [1, 2]);
    t.server.session(view.upload_id).hashUnknown.add(2);
    // Chunk 1 matches; chunk 2 differs, but its stored hash is unknown so only the server can tell.
    const picked = await alteredCopy(original, 5);
    const id = await t.engine.resumeWith(picked, view);
    await t.reaches(id, "failed");
    expect(t.snap(id)).toMatchObject({
      error: "The file changed since the upload started: chunk 2 differs from the part already uploaded",
      canRetry: false,
    });
    // Chunk 2 went alone and first, so the server never held every chunk of the mixed file.
    expect(t.server.putNumbers(view.upload_id)).toEqual([2]);
    expect(t.backoffs()).toEqual([]);
    expect(t.server.session(view.upload_id).view.status).toBe("in_progress");
  });

  it("stops the check when paused, and finishes it before sending anything on resume", async () => {
    const t = setup({ concurrency: 1 });
    const file = makeFile(20, "movie.mkv");
    const view = await t.server.seed(file, [1, 2, 3]);
    const held = holdHashes(t);
    const resuming = t.engine.resumeWith(file, view);
    const id = t.engine.snapshots()[0]!.id;
    await until(() => held.length === 1, "chunk 1 to be hashed");
    held[0]!.resolve();
    await until(() => held.length === 2, "chunk 2 to be hashed");

    t.engine.pause(id);
    expect(t.snap(id).state).toBe("paused");
    await expect(resuming).resolves.toBe(id);
    held[1]!.resolve();
    for (let i = 0; i < 10; i += 1) await tick();
    // Chunk 3 was never hashed, chunk 2's late hash was ignored, and nothing was sent.
    expect(held).toHaveLength(2);
    expect(t.snap(id)).toMatchObject({ state: "paused", bytesDone: 4, chunksDone: 1 });
    expect(t.server.puts).toEqual([]);

    t.hasher.onHash = () => {
      t.server.calls.push("hash");
      return undefined;
    };
    const callsBefore = t.server.calls.length;
    t.engine.resume(id);
    await t.reaches(id, "completed");
    const after = t.server.calls.slice(callsBefore);
    // Chunks 2 and 3 are checked (chunk 1 passed before the pause), then 4 and 5 are sent.
    expect(after.slice(0, 4)).toEqual([`GET ${view.upload_id}`, `GET ${view.upload_id}/chunks`, "hash", "hash"]);
    expect(t.timeline(id).map((s) => s.state)).toContain("hashing");
    expect(t.server.putNumbers(view.upload_id).sort()).toEqual([4, 5]);
  });

  it("can be cancelled while a chunk is being hashed", async () => {
    const t = setup();
    const file = makeFile(12, "movie.mkv");
    const view = await t.server.seed(file, [1, 2]);
    const held = holdHashes(t);
    const resuming = t.engine.resumeWith(file, view);
    const id = t.engine.snapshots()[0]!.id;
    await until(() => held.length === 2, "both stored chunks to be hashed");
    await t.engine.cancel(id);
    for (const gate of held) gate.resolve();
    await expect(resuming).resolves.toBe(id);
    for (let i = 0; i < 10; i += 1) await tick();
    expect(t.snap(id).state).toBe("cancelled");
    expect(t.server.puts).toEqual([]);
    expect(t.server.calls).toContain(`DELETE ${view.upload_id}`);
  });
});

describe("an expired sign-in", () => {
  it("is refreshed once for all the chunks that got 401, which are then sent again", async () => {
    const t = setup({ concurrency: 4, maxAttempts: 1 });
    t.server.onCall = (call) => {
      // The access cookie expires right after the session is created.
      if (call === "POST /uploads") queueMicrotask(() => (t.server.sessionExpired = true));
      return undefined;
    };
    const id = t.engine.start(makeFile(16));
    await t.reaches(id, "completed");
    expect(t.server.refreshes).toBe(1);
    const upload = t.uploadId(id);
    // Every chunk was refused once and sent again after the refresh.
    expect(t.server.putNumbers(upload).sort()).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    expect(t.server.stored(upload)).toEqual([1, 2, 3, 4]);
  });

  it("replays without another refresh a 401 that arrives after the refresh", async () => {
    const t = setup({ concurrency: 2 });
    const late = deferred();
    t.server.onCall = (call) => {
      if (call === "POST /uploads") queueMicrotask(() => (t.server.sessionExpired = true));
      return undefined;
    };
    t.server.onPut = (n, attempt) => (n === 2 && attempt === 1 ? late.promise : undefined);
    const id = t.engine.start(makeFile(8));
    await until(() => t.server.refreshes === 1 && t.server.stored(t.uploadId(id)).includes(1), "chunk 1 through a refresh");
    late.resolve();
    await t.reaches(id, "completed");
    expect(t.server.refreshes).toBe(1);
    expect(t.server.putNumbers(t.uploadId(id)).sort()).toEqual([1, 1, 2, 2]);
  });

  it("fails the upload when the refresh is refused", async () => {
    const t = setup();
    t.server.refreshFails = true;
    t.server.sessionExpired = true;
    const id = t.engine.start(makeFile(16));
    await t.reaches(id, "failed");
    expect(t.snap(id)).toMatchObject({ error: "Your session ended; sign in again", canRetry: true });
    expect(t.server.refreshes).toBe(1);
    expect(t.server.puts).toEqual([]);
  });

  it("ends the session when the request is still refused after a refresh", async () => {
    const t = setup();
    t.server.onPut = () => new HttpError(401, "still no");
    const id = t.engine.start(makeFile(4));
    await t.reaches(id, "failed");
    expect(t.snap(id).error).toBe("Your session ended; sign in again");
    expect(t.server.refreshes).toBe(1);
    expect(t.server.puts).toHaveLength(2);
  });
});

describe("checksum mismatch (422)", () => {
  it("re-hashes the chunk once and sends it again", async () => {
    const t = setup({ concurrency: 1 });
    t.hasher.lies = 1;
    const id = t.engine.start(makeFile(8));
    await t.reaches(id, "completed");
    expect(t.server.putNumbers(t.uploadId(id))).toEqual([1, 1, 2]);
    expect(t.hasher.hashed.map((b) => b.size)).toEqual([4, 4, 4]);
  });

  it("fails the upload on a second mismatch", async () => {
    const t = setup({ concurrency: 1 });
    t.server.onPut = (n) => (n === 2 ? new HttpError(422, "chunk 2 does not match") : undefined);
    const id = t.engine.start(makeFile(12));
    await t.reaches(id, "failed");
    expect(t.server.putNumbers(t.uploadId(id))).toEqual([1, 2, 2]);
    expect(t.hasher.hashed).toHaveLength(3);
    expect(t.snap(id)).toMatchObject({ error: "The file changed while it was being uploaded", canRetry: false });
  });
});

describe("offline", () => {
  it("starts no request while offline and continues once online", async () => {
    const t = setup();
    t.connectivity.set(false);
    const id = t.engine.start(makeFile(8));
    for (let i = 0; i < 10; i += 1) await tick();
    expect(t.server.calls).toEqual([]);
    expect(t.snap(id).state).toBe("uploading");
    t.connectivity.set(true);
    await t.reaches(id, "completed");
  });

  it("burns no attempts on requests lost to an outage and sends none while offline", async () => {
    const t = setup({ maxAttempts: 2, concurrency: 1 });
    t.server.onPut = (n, attempt) => {
      if (n !== 1 || attempt > 3) return undefined;
      t.connectivity.set(false);
      return new NetworkError();
    };
    const id = t.engine.start(makeFile(8));
    for (let outage = 1; outage <= 3; outage += 1) {
      await until(() => !t.connectivity.isOnline() && t.server.inFlight === 0, `outage ${outage}`);
      for (let i = 0; i < 5; i += 1) await tick();
      expect(t.server.puts).toHaveLength(outage);
      t.connectivity.set(true);
    }
    await t.reaches(id, "completed");
    expect(t.server.puts.every((p) => p.online)).toBe(true);
    expect(t.backoffs()).toEqual([]);
  });

  it("cuts a backoff short when the connection comes back", async () => {
    const t = setup({ baseDelayMs: 30_000, maxDelayMs: 30_000, concurrency: 1 });
    vi.spyOn(Math, "random").mockReturnValue(0.9);
    t.clock.hold();
    t.server.onPut = (_n, attempt) => (attempt === 1 ? new NetworkError() : undefined);
    const id = t.engine.start(makeFile(4));
    await until(() => t.backoffs().length === 1, "a backoff");
    for (let i = 0; i < 5; i += 1) await tick();
    expect(t.server.puts).toHaveLength(1);
    t.connectivity.set(false);
    t.connectivity.set(true);
    await t.reaches(id, "completed");
    expect(t.server.puts).toHaveLength(2);
    expect(t.backoffs()).toEqual([27_000]);
  });
});

describe("cancel", () => {
  it("aborts the chunks in flight and deletes the server session", async () => {
    const t = setup();
    const gate = deferred();
    t.server.onPut = () => gate.promise;
    const id = t.engine.start(makeFile(16));
    await until(() => t.server.inFlight === 4, "chunks in flight");
    const upload = t.uploadId(id);
    await t.engine.cancel(id);
    expect(t.snap(id)).toMatchObject({ state: "cancelled", canRetry: false });
    expect(t.server.calls).toContain(`DELETE ${upload}`);
    expect(t.server.puts.every((p) => p.signal.aborted)).toBe(true);
    expect(t.server.session(upload).view.status).toBe("cancelled");
    const puts = t.server.puts.length;
    gate.resolve();
    for (let i = 0; i < 10; i += 1) await tick();
    expect(t.server.puts.length).toBe(puts);
    expect(t.snap(id).state).toBe("cancelled");
  });

  it("deletes a session whose creation was under way when cancelled", async () => {
    const t = setup();
    const gate = deferred();
    t.server.onCall = (call) => (call === "POST /uploads" ? gate.promise : undefined);
    const id = t.engine.start(makeFile(8));
    await until(() => t.server.calls.includes("POST /uploads"), "the session request");
    await t.engine.cancel(id);
    gate.resolve();
    await until(() => t.server.calls.some((c) => c.startsWith("DELETE ")), "the session to be deleted");
    expect(t.server.puts).toEqual([]);
    expect(t.snap(id).state).toBe("cancelled");
  });

  it("cancels a queued upload without any request", async () => {
    const t = setup({ parallelUploads: 1 });
    const gate = deferred();
    t.server.onPut = () => gate.promise;
    t.engine.start(makeFile(4, "a"));
    const queued = t.engine.start(makeFile(4, "b"));
    await t.engine.cancel(queued);
    expect(t.snap(queued).state).toBe("cancelled");
    expect(t.server.calls.filter((c) => c.startsWith("DELETE"))).toEqual([]);
    gate.resolve();
  });
});

describe("the engine's lifetime", () => {
  it("remove() forgets finished uploads only", async () => {
    const t = setup();
    const gate = deferred();
    t.server.onPut = (n) => (n === 1 ? undefined : gate.promise);
    const done = t.engine.start(makeFile(4, "small"));
    const running = t.engine.start(makeFile(8, "big"));
    await t.reaches(done, "completed");
    t.engine.remove(done);
    t.engine.remove(running);
    expect(t.engine.snapshots().map((s) => s.id)).toEqual([running]);
    gate.resolve();
  });

  it("dispose() aborts everything and stops listening", async () => {
    const t = setup();
    const gate = deferred();
    t.server.onPut = () => gate.promise;
    t.engine.start(makeFile(16));
    await until(() => t.server.inFlight === 4, "chunks in flight");
    const notifications = t.history.length;
    t.engine.dispose();
    expect(t.server.puts.every((p) => p.signal.aborted)).toBe(true);
    expect(t.connectivity.listenerCount).toBe(0);
    gate.resolve();
    for (let i = 0; i < 10; i += 1) await tick();
    expect(t.history.length).toBe(notifications);
    expect(() => t.engine.start(makeFile(4))).toThrow(/stopped/);
  });
});
