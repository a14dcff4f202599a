// In-memory stand-ins for the engine's ports, used by the engine's tests only.

import type { ChunkList, UploadCreated, UploadStatus, UploadView } from "../api/types";
import type { Clock } from "./clock";
import { sha256Hex } from "./digest";
import { abortError } from "./signals";
import { HttpError, type Connectivity, type Hasher, type Transport } from "./types";

/** Let timers, promises and the engine's own work run once. */
export const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Wait until `condition` holds, failing the test if it never does. */
export async function until(condition: () => boolean, what = "the condition"): Promise<void> {
  for (let i = 0; i < 2000; i += 1) {
    if (condition()) return;
    await tick();
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

export function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A file of `size` bytes with a recognisable pattern (`seed` changes the content). */
export function makeFile(size: number, name = "data.bin", seed = 0, type = "application/octet-stream"): File {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 1) bytes[i] = (i * 7 + seed) % 251;
  return new File([bytes], name, { type });
}

/** The same file with the byte at `offset` changed: same name, size and type, other content. */
export async function alteredCopy(file: File, offset: number): Promise<File> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  bytes[offset] = (bytes[offset]! + 1) % 256;
  return new File([bytes], file.name, { type: file.type });
}

/** What a scripted PUT attempt does: fail with an error, wait for a promise, or (undefined) succeed. */
export type PutScript = (n: number, attempt: number, uploadId: string) => Error | Promise<void> | undefined;

export interface PutRecord {
  uploadId: string;
  n: number;
  size: number;
  attempt: number;
  signal: AbortSignal;
  /** Whether the browser said it was online when the request was started. */
  online: boolean;
}

interface FakeSession {
  view: UploadView;
  /** SHA-256 of each stored chunk's bytes. */
  stored: Map<number, string>;
  /** Stored chunks whose hash the chunk list leaves out (the server lost or never saved it). */
  hashUnknown: Set<number>;
  polls: number;
}

/** An in-memory LFUSYS server that records every call and can be scripted to fail. */
export class FakeServer implements Transport {
  readonly calls: string[] = [];
  readonly puts: PutRecord[] = [];
  readonly sessions = new Map<string, FakeSession>();
  chunkSize = 4;
  /** getUpload answers "finalizing" this many times before "completed". */
  pollsBeforeComplete = 0;
  /** How many onProgress reports a successful PUT makes before it is answered. */
  progressSteps = 2;
  onPut: PutScript = () => undefined;
  /** Runs before a JSON call is answered; an Error fails it, a promise delays it. */
  onCall: (call: string) => Error | Promise<void> | undefined = () => undefined;
  /** While true, requests sent get 401 until refreshSession succeeds. */
  sessionExpired = false;
  refreshFails = false;
  refreshes = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** Consulted for PutRecord.online. */
  connectivity: Connectivity | null = null;
  private nextId = 1;

  async createUpload(request: { file_name: string; file_type: string; file_size: number }): Promise<UploadCreated> {
    const expired = this.sessionExpired;
    await this.answer("POST /uploads", expired);
    const id = `u${this.nextId++}`;
    const totalChunks = Math.ceil(request.file_size / this.chunkSize);
    this.sessions.set(id, {
      view: {
        upload_id: id,
        file_name: request.file_name,
        file_type: request.file_type,
        file_size: request.file_size,
        status: "pending",
        progress: 0,
        uploaded_chunks: 0,
        total_chunks: totalChunks,
        chunk_size: this.chunkSize,
        created_at: "2025-01-01T00:00:00Z",
        expires_at: "2025-01-02T00:00:00Z",
        file_id: null,
        failure_reason: null,
      },
      stored: new Map(),
      hashUnknown: new Set(),
      polls: 0,
    });
    this.calls.push(`created ${id}`);
    return { upload_id: id, chunk_size: this.chunkSize, total_chunks: totalChunks, expires_at: "2025-01-02T00:00:00Z" };
  }

  /** A session as if another device had started it and stored `storedChunks` of `file`. */
  async seed(file: File, storedChunks: number[], status: UploadStatus = "in_progress"): Promise<UploadView> {
    const { upload_id } = await this.createUpload({ file_name: file.name, file_type: file.type, file_size: file.size });
    const session = this.session(upload_id);
    for (const n of storedChunks) {
      const start = (n - 1) * this.chunkSize;
      session.stored.set(n, await sha256Hex(file.slice(start, start + this.chunkSize)));
    }
    session.view = { ...session.view, status, uploaded_chunks: storedChunks.length };
    this.calls.length = 0;
    return { ...session.view };
  }

  async putChunk(
    uploadId: string,
    n: number,
    body: Blob,
    sha256: string,
    options: { signal: AbortSignal; onProgress: (sentBytes: number) => void },
  ): Promise<void> {
    const { signal, onProgress } = options;
    const expired = this.sessionExpired;
    const attempt = this.puts.filter((p) => p.uploadId === uploadId && p.n === n).length + 1;
    this.puts.push({ uploadId, n, size: body.size, attempt, signal, online: this.connectivity?.isOnline() ?? true });
    this.calls.push(`PUT ${uploadId}/${n}`);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await tick();
      if (signal.aborted) throw abortError();
      for (let step = 1; step < this.progressSteps; step += 1) {
        onProgress(Math.floor((body.size * step) / this.progressSteps));
      }
      const scripted = this.onPut(n, attempt, uploadId);
      if (scripted instanceof Error) throw scripted;
      if (scripted !== undefined) await untilAborted(scripted, signal);
      // Judged by the cookie the request was sent with, however late the answer comes.
      if (expired) throw new HttpError(401, "not signed in");
      this.store(uploadId, n, await sha256Hex(body), sha256);
      onProgress(body.size);
    } finally {
      this.inFlight -= 1;
    }
  }

  async getUpload(uploadId: string): Promise<UploadView> {
    await this.answer(`GET ${uploadId}`, this.sessionExpired);
    const session = this.session(uploadId);
    if (session.view.status === "finalizing") {
      session.polls += 1;
      if (session.polls > this.pollsBeforeComplete) {
        session.view = { ...session.view, status: "completed", file_id: `file-${uploadId}` };
      }
    }
    return { ...session.view };
  }

  async listChunks(uploadId: string): Promise<ChunkList> {
    await this.answer(`GET ${uploadId}/chunks`, this.sessionExpired);
    const { stored, hashUnknown } = this.session(uploadId);
    const chunks = [...stored.keys()].sort((a, b) => a - b);
    const known = chunks.filter((n) => !hashUnknown.has(n));
    return { chunks, hashes: Object.fromEntries(known.map((n) => [String(n), stored.get(n)!])) };
  }

  async cancelUpload(uploadId: string): Promise<void> {
    await this.answer(`DELETE ${uploadId}`, this.sessionExpired);
    const session = this.session(uploadId);
    session.view = { ...session.view, status: "cancelled" };
  }

  async refreshSession(): Promise<void> {
    this.refreshes += 1;
    this.calls.push("POST /auth/refresh");
    await tick();
    if (this.refreshFails) throw new HttpError(401, "refresh token revoked");
    this.sessionExpired = false;
  }

  /** Chunk numbers stored for `uploadId`, ascending. */
  stored(uploadId: string): number[] {
    return [...this.session(uploadId).stored.keys()].sort((a, b) => a - b);
  }

  putNumbers(uploadId: string, from = 0): number[] {
    return this.puts.slice(from).filter((p) => p.uploadId === uploadId).map((p) => p.n);
  }

  session(uploadId: string): FakeSession {
    const session = this.sessions.get(uploadId);
    if (session === undefined) throw new HttpError(404, "unknown upload");
    return session;
  }

  private async answer(call: string, expired: boolean): Promise<void> {
    this.calls.push(call);
    await tick();
    if (expired) throw new HttpError(401, "not signed in");
    const scripted = this.onCall(call);
    if (scripted instanceof Error) throw scripted;
    if (scripted !== undefined) await scripted;
  }

  private store(uploadId: string, n: number, actual: string, claimed: string): void {
    const session = this.session(uploadId);
    if (session.view.status === "cancelled") throw new HttpError(410, "upload cancelled");
    if (actual !== claimed) throw new HttpError(422, `chunk ${n} does not match X-Chunk-Hash`);
    const before = session.stored.get(n);
    if (before !== undefined && before !== actual) {
      throw new HttpError(409, `chunk ${n} is already stored with different content`);
    }
    session.stored.set(n, actual);
    session.hashUnknown.delete(n);
    const complete = session.stored.size === session.view.total_chunks;
    session.view = {
      ...session.view,
      status: complete ? "finalizing" : "in_progress",
      uploaded_chunks: session.stored.size,
    };
  }
}

function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(abortError());
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

/** SHA-256 with Web Crypto; can be told to lie, to provoke a checksum mismatch. */
export class FakeHasher implements Hasher {
  /** Sizes of the blobs hashed, in order. */
  readonly hashed: Blob[] = [];
  /** Return a wrong hash for this many of the next calls. */
  lies = 0;
  /** Runs as each hash starts; a promise holds that hash until it resolves. */
  onHash: (blob: Blob) => Promise<void> | undefined = () => undefined;

  async hash(blob: Blob): Promise<string> {
    this.hashed.push(blob);
    const held = this.onHash(blob);
    if (held !== undefined) await held;
    const real = await sha256Hex(blob);
    if (this.lies > 0) {
      this.lies -= 1;
      return "0".repeat(64);
    }
    return real;
  }
}

export class FakeConnectivity implements Connectivity {
  private online = true;
  private readonly listeners = new Set<(online: boolean) => void>();

  isOnline(): boolean {
    return this.online;
  }

  subscribe(listener: (online: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(online: boolean): void {
    this.online = online;
    for (const listener of this.listeners) listener(online);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}

/**
 * Time stands still (now() is constant unless advanced); sleeps are recorded and end on the next
 * macrotask, or, while held, only when released or aborted.
 */
export class FakeClock implements Clock {
  time = 0;
  readonly sleeps: number[] = [];
  private held: (() => void)[] | null = null;

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return new Promise<void>((resolve) => {
      const done = () => {
        signal?.removeEventListener("abort", done);
        resolve();
      };
      if (signal?.aborted) {
        done();
        return;
      }
      signal?.addEventListener("abort", done, { once: true });
      if (this.held !== null) this.held.push(done);
      else setTimeout(done, 0);
    });
  }

  /** Keep every sleep from now on pending until `release`. */
  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const done of held) done();
  }

  get pendingSleeps(): number {
    return this.held?.length ?? 0;
  }
}
