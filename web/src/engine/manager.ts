// The upload engine: queues uploads, sends their chunks through a bounded pool, follows the server
// until it has assembled the file, and publishes what happens as immutable snapshots.

import type { ChunkList, UploadStatus, UploadView } from "../api/types";
import { systemClock, type Clock } from "./clock";
import { describeFailure, FileChangedError, isStorageFull, storageFullMessage, UploadFailure } from "./failure";
import { OnlineGate } from "./online";
import { RequestPolicy } from "./request-policy";
import { unlessAborted } from "./signals";
import {
  HttpError,
  ResumeMismatchError,
  type Connectivity,
  type EngineOptions,
  type Hasher,
  type Transport,
  type UploadEngine,
  type UploadSnapshot,
  type UploadState,
} from "./types";
import { UploadJob, type ServerSession } from "./upload-job";

const DEFAULT_OPTIONS: Required<EngineOptions> = {
  concurrency: 4,
  parallelUploads: 2,
  maxAttempts: 8,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxBusyWaitMs: 30 * 60_000,
  pollIntervalMs: 500,
};

/** Progress is published at most this often; state changes are published at once. */
export const PROGRESS_INTERVAL_MS = 100;

/** Server statuses after which the session will never complete, in the user's words. */
const DEAD_END: Partial<Record<UploadStatus, string>> = {
  failed: "The server could not assemble the file",
  cancelled: "This upload was cancelled",
  expired: "This upload expired before it was finished",
};

const FINISHED: ReadonlySet<UploadState> = new Set(["completed", "failed", "cancelled"]);

const CONTENT_DIFFERS =
  "The file has changed: its content differs from what was already uploaded. Pick the original file, or cancel this upload and start again";

type Listener = (snapshots: UploadSnapshot[]) => void;

export class UploadManager implements UploadEngine {
  private readonly transport: Transport;
  private readonly hasher: Hasher;
  private readonly clock: Clock;
  private readonly options: Required<EngineOptions>;
  private readonly online: OnlineGate;
  private readonly requests: RequestPolicy;
  /** Aborted by dispose: stops timers and requests that outlive a single job. */
  private readonly lifetime = new AbortController();
  private readonly jobs: UploadJob[] = [];
  private readonly listeners = new Set<Listener>();
  private published: UploadSnapshot[] = freeze([]);
  private lastPublishedAt = -Infinity;
  private unpublished = false;
  private publishTimerSet = false;
  private nextId = 1;

  constructor(
    transport: Transport,
    hasher: Hasher,
    connectivity: Connectivity,
    options: EngineOptions = {},
    clock: Clock = systemClock,
  ) {
    this.transport = transport;
    this.hasher = hasher;
    this.clock = clock;
    this.options = withDefaults(options);
    this.online = new OnlineGate(connectivity, clock);
    this.requests = new RequestPolicy(transport, this.online, this.options);
  }

  // ---- public API ---------------------------------------------------------------------------

  start(file: File): string {
    const job = this.addJob(file, "queued");
    this.schedule();
    return job.id;
  }

  async resumeWith(file: File, upload: UploadView): Promise<string> {
    checkSameFile(file, upload);
    if (this.jobs.some((job) => job.session?.uploadId === upload.upload_id && !FINISHED.has(job.state))) {
      throw new Error("This upload is already being continued here");
    }
    const job = this.addJob(file, "hashing", upload);
    job.needsCheck = true;
    const controller = new AbortController();
    job.controller = controller;
    try {
      await this.checkPickedFile(job, job.session!, upload, controller.signal);
    } catch (error) {
      // Paused, cancelled or disposed while checking: the job itself shows that.
      if (controller.signal.aborted) return job.id;
      this.forget(job);
      throw error instanceof ResumeMismatchError ? error : new Error(describeFailure(error).message);
    }
    // Paused just as the check ended: resume() carries on from there.
    if (controller.signal.aborted) return job.id;
    job.controller = null;
    this.setState(job, "queued");
    this.schedule();
    return job.id;
  }

  pause(id: string): void {
    const job = this.find(id);
    if (job === undefined || (job.state !== "queued" && job.state !== "uploading" && job.state !== "hashing")) return;
    this.halt(job, "paused");
  }

  resume(id: string): void {
    const job = this.find(id);
    if (job?.state !== "paused") return;
    // Whatever paused it (a full disk, say) is for the next run to find out again.
    job.error = null;
    this.setState(job, "queued");
    this.schedule();
  }

  async cancel(id: string): Promise<void> {
    const job = this.find(id);
    if (job === undefined || job.state === "completed" || job.state === "cancelled") return;
    job.canRetry = false;
    this.halt(job, "cancelled");
    if (job.session !== null) await this.discardSession(job.session.uploadId);
  }

  retry(id: string): void {
    const job = this.find(id);
    if (job?.state !== "failed" || !job.canRetry) return;
    job.error = null;
    job.canRetry = false;
    this.setState(job, "queued");
    this.schedule();
  }

  remove(id: string): void {
    const job = this.find(id);
    if (job === undefined || !FINISHED.has(job.state)) return;
    this.forget(job);
  }

  snapshots(): UploadSnapshot[] {
    return this.published;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  dispose(): void {
    if (this.lifetime.signal.aborted) return;
    this.lifetime.abort();
    for (const job of this.jobs) job.stop();
    this.online.dispose();
    this.listeners.clear();
  }

  // ---- scheduling ---------------------------------------------------------------------------

  private addJob(file: File, state: UploadState, existing?: UploadView): UploadJob {
    if (this.lifetime.signal.aborted) throw new Error("The upload engine was stopped");
    const job = new UploadJob(`upload-${this.nextId++}`, file, state);
    if (existing !== undefined) job.openSession(existing.upload_id, existing.chunk_size, existing.total_chunks);
    this.jobs.push(job);
    this.changed(job);
    return job;
  }

  /** Start queued jobs, in start order, while slots are free. */
  private schedule(): void {
    for (const job of this.jobs) {
      if (this.jobs.filter((j) => j.holdsSlot).length >= this.options.parallelUploads) return;
      if (job.state === "queued") this.launch(job);
    }
  }

  private launch(job: UploadJob): void {
    const controller = new AbortController();
    job.controller = controller;
    job.holdsSlot = true;
    job.meter.restart();
    this.setState(job, job.needsCheck ? "hashing" : "uploading");
    void this.run(job, controller);
  }

  /** Stop a job on the user's request: nothing it had in flight counts as a failure. */
  private halt(job: UploadJob, state: "paused" | "cancelled"): void {
    job.stop();
    job.needsSync = job.session !== null;
    this.setState(job, state);
    this.releaseSlot(job);
  }

  private releaseSlot(job: UploadJob): void {
    if (!job.holdsSlot) return;
    job.holdsSlot = false;
    this.schedule();
  }

  /** Stop a job for a reason the user must see, leaving them to resume it later. */
  private pauseFor(job: UploadJob, message: string): void {
    job.error = message;
    this.halt(job, "paused");
  }

  private fail(job: UploadJob, error: unknown): void {
    const reason = describeFailure(error);
    job.stop();
    job.error = reason.message;
    job.canRetry = reason.canRetry;
    job.needsSync = job.session !== null;
    this.setState(job, "failed");
    this.releaseSlot(job);
  }

  private forget(job: UploadJob): void {
    this.jobs.splice(this.jobs.indexOf(job), 1);
    this.changed(job);
  }

  private find(id: string): UploadJob | undefined {
    return this.jobs.find((job) => job.id === id);
  }

  // ---- one run of an upload: session, chunks, assembly ----------------------------------------

  private async run(job: UploadJob, controller: AbortController): Promise<void> {
    const { signal } = controller;
    try {
      const session = await this.prepareSession(job, signal);
      await this.sendMissingChunks(job, session, signal);
      // A request that succeeded just as the user paused still returns; don't step past the pause.
      signal.throwIfAborted();
      // The bytes are all sent; assembling is the server's work, so let the next upload go.
      this.releaseSlot(job);
      this.setState(job, "finalizing");
      await this.awaitAssembly(job, session, signal);
    } catch (error) {
      // Paused, cancelled or disposed: whoever stopped the run has set the state.
      if (signal.aborted) return;
      // A full disk is the server's to fix: retrying now would only fill the log, so wait paused.
      if (isStorageFull(error)) this.pauseFor(job, storageFullMessage(error));
      else this.fail(job, error);
    }
  }

  private async prepareSession(job: UploadJob, signal: AbortSignal): Promise<ServerSession> {
    const session = job.session;
    if (session === null) return this.createSession(job, signal);
    if (job.needsCheck) {
      // Paused while the picked file was being checked: finish the check before sending anything.
      const view = await this.requests.run(() => this.transport.getUpload(session.uploadId), signal);
      await this.checkPickedFile(job, session, view, signal);
      signal.throwIfAborted();
      job.needsSync = false;
      this.setState(job, "uploading");
    } else if (job.needsSync) {
      await this.syncStoredChunks(job, session, signal);
      job.needsSync = false;
      this.changed(job);
    }
    return session;
  }

  private async createSession(job: UploadJob, signal: AbortSignal): Promise<ServerSession> {
    const { name, type, size } = job.file;
    // A POST in flight cannot be aborted: a run started by a quick pause and resume joins it
    // instead of creating a second session.
    const create = () =>
      (job.creating ??= this.transport
        .createUpload({ file_name: name, file_type: type, file_size: size })
        .finally(() => {
          job.creating = null;
        }));
    const created = await this.requests.run(create, signal);
    let session = job.session;
    if (session === null) {
      session = job.openSession(created.upload_id, created.chunk_size, created.total_chunks);
      // Cancelled while the session was being created: delete it rather than leave it to expire.
      if (job.state === "cancelled") void this.discardSession(session.uploadId).catch(() => undefined);
    }
    signal.throwIfAborted();
    this.changed(job);
    return session;
  }

  /** Learn which chunks the server already holds (after a pause or a failure). */
  private async syncStoredChunks(job: UploadJob, session: ServerSession, signal: AbortSignal): Promise<void> {
    const view = await this.requests.run(() => this.transport.getUpload(session.uploadId), signal);
    if (holdsEveryChunk(session, view)) return;
    const list = await this.requests.run(() => this.transport.listChunks(session.uploadId), signal);
    const { checkable, unchecked } = splitStored(list);
    session.transfer.resetStored(checkable);
    job.uncheckedStored = new Set(unchecked);
  }

  /**
   * Check that the picked file is the one the session was started with, before anything is sent:
   * hash every chunk the server holds, `concurrency` at a time, and compare each with the server's
   * hash of it. A chunk counts as stored once it passes, so the bar moves with the bytes checked.
   * A stored chunk whose hash the server does not know cannot be checked: it is sent again, and
   * the server refuses it (409) if its bytes differ.
   */
  private async checkPickedFile(
    job: UploadJob,
    session: ServerSession,
    view: UploadView,
    signal: AbortSignal,
  ): Promise<void> {
    if (holdsEveryChunk(session, view)) {
      job.needsCheck = false;
      return;
    }
    const list = await this.requests.run(() => this.transport.listChunks(session.uploadId), signal);
    signal.throwIfAborted();
    const { transfer } = session;
    const { checkable, unchecked } = splitStored(list);
    job.uncheckedStored = new Set(unchecked);
    // Chunks that passed a check interrupted by a pause are not hashed again.
    const queue = checkable.filter((n) => !transfer.isStored(n));
    let mismatch = false;
    const worker = async () => {
      for (let n = queue.shift(); n !== undefined && !mismatch; n = queue.shift()) {
        // A pause must not wait for a hash of a large chunk to finish.
        const actual = await unlessAborted(this.hasher.hash(job.file.slice(...transfer.layout.range(n))), signal);
        signal.throwIfAborted();
        if (mismatch) return;
        if (actual.toLowerCase() !== list.hashes[String(n)]!.toLowerCase()) {
          mismatch = true;
          throw new ResumeMismatchError(CONTENT_DIFFERS);
        }
        transfer.markStored(n);
        this.changed(job, false);
      }
    };
    const workers = Math.min(this.options.concurrency, queue.length);
    await Promise.all(Array.from({ length: workers }, worker));
    transfer.resetStored(checkable);
    job.needsCheck = false;
    // Publish the last checked bytes while still "hashing", so the bar ends where the check did.
    this.changed(job);
  }

  /** Send the chunks the server lacks, `concurrency` at a time, each hashed just before it goes. */
  private async sendMissingChunks(job: UploadJob, session: ServerSession, signal: AbortSignal): Promise<void> {
    const missing = session.transfer.missing();
    // Unchecked stored chunks go first and on their own: were the rest sent alongside, the server
    // could hold every chunk, and assemble the file, before it refuses a changed one.
    await this.sendChunks(job, session, missing.filter((n) => job.uncheckedStored.has(n)), signal);
    signal.throwIfAborted();
    await this.sendChunks(job, session, missing.filter((n) => !job.uncheckedStored.has(n)), signal);
  }

  private async sendChunks(job: UploadJob, session: ServerSession, queue: number[], signal: AbortSignal): Promise<void> {
    const worker = async () => {
      for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
        signal.throwIfAborted();
        await this.sendChunk(job, session, n, signal);
      }
    };
    // When one chunk fails for good, `run` stops its siblings through the shared signal.
    const workers = Math.min(this.options.concurrency, queue.length);
    await Promise.all(Array.from({ length: workers }, worker));
  }

  private async sendChunk(job: UploadJob, session: ServerSession, n: number, signal: AbortSignal): Promise<void> {
    const { uploadId, transfer } = session;
    // A slice is a lazy view of the file: only the hasher and the request read its bytes.
    const body = job.file.slice(...transfer.layout.range(n));
    const onProgress = (sentBytes: number) => {
      if (signal.aborted) return;
      transfer.sending(n, sentBytes);
      this.changed(job, false);
    };
    const put = (sha256: string) =>
      this.requests.run(async () => {
        try {
          await this.transport.putChunk(uploadId, n, body, sha256, { signal, onProgress });
        } finally {
          transfer.drop(n);
        }
      }, signal);
    const hashAndPut = async () => {
      try {
        await put(await this.hasher.hash(body));
      } catch (error) {
        // The server holds other bytes for this chunk: no retry can make them agree.
        if (!signal.aborted && isConflict(error)) throw new FileChangedError(n);
        throw error;
      }
    };
    try {
      await hashAndPut();
    } catch (error) {
      if (signal.aborted || !isChecksumMismatch(error)) throw error;
      // The server got other bytes than we hashed: a flaky read, or the file changed under us.
      // Hash again and resend once; a second mismatch fails the upload.
      await hashAndPut();
    }
    transfer.markStored(n);
    this.changed(job, false);
  }

  /** Poll until the server says the file is assembled; only the server decides "completed". */
  private async awaitAssembly(job: UploadJob, session: ServerSession, signal: AbortSignal): Promise<void> {
    for (;;) {
      const view = await this.requests.run(() => this.transport.getUpload(session.uploadId), signal);
      signal.throwIfAborted();
      if (view.status === "completed") {
        session.transfer.markAllStored();
        job.fileId = view.file_id;
        job.controller = null;
        this.setState(job, "completed");
        return;
      }
      throwIfDeadEnd(view);
      await this.clock.sleep(this.options.pollIntervalMs, signal);
      signal.throwIfAborted();
    }
  }

  private async discardSession(uploadId: string): Promise<void> {
    try {
      await this.requests.run(() => this.transport.cancelUpload(uploadId), this.lifetime.signal);
    } catch (error) {
      // Already gone is what we wanted.
      if (error instanceof HttpError && (error.status === 404 || error.status === 410)) return;
      throw error;
    }
  }

  // ---- publishing ---------------------------------------------------------------------------

  private setState(job: UploadJob, state: UploadState): void {
    job.state = state;
    this.changed(job);
  }

  /** Record that `job` changed; state changes go out at once, progress at most every 100 ms. */
  private changed(job: UploadJob, urgent = true): void {
    job.touch();
    this.unpublished = true;
    if (urgent) this.publish();
    else this.publishSoon();
  }

  private publishSoon(): void {
    if (this.publishTimerSet) return;
    const wait = this.lastPublishedAt + PROGRESS_INTERVAL_MS - this.clock.now();
    if (wait <= 0) {
      this.publish();
      return;
    }
    this.publishTimerSet = true;
    void this.clock.sleep(wait, this.lifetime.signal).then(() => {
      this.publishTimerSet = false;
      if (this.unpublished) this.publish();
    });
  }

  private publish(): void {
    if (this.lifetime.signal.aborted) return;
    const now = this.clock.now();
    this.lastPublishedAt = now;
    this.unpublished = false;
    this.published = freeze(this.jobs.map((job) => job.snapshot(now)));
    for (const listener of [...this.listeners]) {
      try {
        listener(this.published);
      } catch (error) {
        // A broken listener must not stop the uploads; report it the way an event handler would.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

function withDefaults(options: EngineOptions): Required<EngineOptions> {
  const merged = { ...DEFAULT_OPTIONS };
  for (const key of Object.keys(DEFAULT_OPTIONS) as (keyof EngineOptions)[]) {
    const value = options[key];
    if (value !== undefined) merged[key] = value;
  }
  // Zero workers or attempts would stall silently; one is the least that makes progress.
  merged.concurrency = Math.max(1, merged.concurrency);
  merged.parallelUploads = Math.max(1, merged.parallelUploads);
  merged.maxAttempts = Math.max(1, merged.maxAttempts);
  return merged;
}

/** Throw, in the user's words, if the session will never complete; a failure names the server's reason. */
function throwIfDeadEnd(view: Pick<UploadView, "status" | "failure_reason">): void {
  const deadEnd = DEAD_END[view.status];
  if (deadEnd === undefined) return;
  // Older servers send no reason at all (undefined), so test for any text.
  const reason = view.status === "failed" ? view.failure_reason : null;
  throw new UploadFailure(reason ? `${deadEnd}: ${reason}` : deadEnd, false);
}

/**
 * Whether the session's status says the server has every chunk (finalizing or completed: its
 * chunk files may already be deleted, so its chunk list would mislead). Throws for a dead session.
 */
function holdsEveryChunk(session: ServerSession, view: Pick<UploadView, "status" | "failure_reason">): boolean {
  throwIfDeadEnd(view);
  const { status } = view;
  if (status !== "finalizing" && status !== "completed") return false;
  session.transfer.markAllStored();
  return true;
}

function checkSameFile(file: File, upload: UploadView): void {
  if (file.name !== upload.file_name) {
    throw new ResumeMismatchError(
      `This is not the same file: the upload is for "${upload.file_name}" but you picked "${file.name}"`,
    );
  }
  if (file.size !== upload.file_size) {
    throw new ResumeMismatchError(
      `This is not the same file: "${upload.file_name}" had ${upload.file_size} bytes but the picked file has ${file.size}`,
    );
  }
}

/** Stored chunks whose hash the server reports (only these can count as stored), and the rest. */
function splitStored(list: ChunkList): { checkable: number[]; unchecked: number[] } {
  const known = (n: number) => typeof list.hashes[String(n)] === "string";
  return { checkable: list.chunks.filter(known), unchecked: list.chunks.filter((n) => !known(n)) };
}

function isChecksumMismatch(error: unknown): boolean {
  return error instanceof HttpError && error.status === 422;
}

function isConflict(error: unknown): boolean {
  return error instanceof HttpError && error.status === 409;
}

/** The published list: frozen so no listener can change what the others see. */
function freeze(snapshots: UploadSnapshot[]): UploadSnapshot[] {
  return Object.freeze(snapshots) as UploadSnapshot[];
}
