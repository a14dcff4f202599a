// The real Hasher: SHA-256 in a small pool of module Web Workers, so hashing a 5 GiB file chunk by
// chunk never blocks the page.

import type { Hasher } from "./types";

export interface HashRequest {
  id: number;
  blob: Blob;
}

/** A hash, or why the Blob could not be hashed (`name` keeps e.g. NotReadableError for the engine). */
export type HashReply = { id: number; sha256: string } | { id: number; error: string; name: string };

interface Pending {
  resolve: (sha256: string) => void;
  reject: (error: Error) => void;
}

/** One worker and the requests it has not answered yet. */
interface PoolMember {
  worker: Worker;
  pending: Map<number, Pending>;
}

export class WorkerHasher implements Hasher {
  private readonly size: number;
  private readonly createWorker: () => Worker;
  private readonly pool: PoolMember[] = [];
  private nextId = 1;

  constructor(
    size = 2,
    createWorker: () => Worker = () => new Worker(new URL("./hash.worker.ts", import.meta.url), { type: "module" }),
  ) {
    this.size = Math.max(1, size);
    this.createWorker = createWorker;
  }

  hash(blob: Blob): Promise<string> {
    const member = this.leastBusy();
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      member.pending.set(id, { resolve, reject });
      member.worker.postMessage({ id, blob } satisfies HashRequest);
    });
  }

  /** Stop the workers; hashes still pending reject. */
  dispose(): void {
    for (const member of this.pool.splice(0)) {
      member.worker.terminate();
      failAll(member, new Error("the hasher was stopped"));
    }
  }

  /** Workers are started on first use, up to `size`, then reused. */
  private leastBusy(): PoolMember {
    const idle = this.pool.find((member) => member.pending.size === 0);
    if (idle !== undefined) return idle;
    if (this.pool.length < this.size) return this.spawn();
    return this.pool.reduce((best, member) => (member.pending.size < best.pending.size ? member : best));
  }

  private spawn(): PoolMember {
    const member: PoolMember = { worker: this.createWorker(), pending: new Map() };
    member.worker.onmessage = (event: MessageEvent<HashReply>) => settle(member, event.data);
    member.worker.onerror = (event) => {
      // A worker that failed to load or crashed answers nothing more: fail its requests and
      // replace it on the next hash.
      event.preventDefault();
      this.pool.splice(this.pool.indexOf(member), 1);
      member.worker.terminate();
      // A script that failed to load fires a plain Event, without a message.
      failAll(member, new Error(`the hashing worker failed: ${event.message || "it could not be started"}`));
    };
    this.pool.push(member);
    return member;
  }
}

function settle(member: PoolMember, reply: HashReply): void {
  const pending = member.pending.get(reply.id);
  if (pending === undefined) return;
  member.pending.delete(reply.id);
  if ("error" in reply) pending.reject(new DOMException(`hashing failed: ${reply.error}`, reply.name));
  else pending.resolve(reply.sha256);
}

function failAll(member: PoolMember, error: Error): void {
  for (const pending of member.pending.values()) pending.reject(error);
  member.pending.clear();
}
