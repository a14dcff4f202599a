import { describe, expect, it } from "vitest";
import { sha256Hex } from "./digest";
import { WorkerHasher, type HashReply, type HashRequest } from "./worker-hasher";

/** Stands in for a hash.worker.ts Worker; the test decides when and how it answers. */
class FakeWorker {
  onmessage: ((event: { data: HashReply }) => void) | null = null;
  onerror: ((event: { message: string; preventDefault: () => void }) => void) | null = null;
  readonly received: HashRequest[] = [];
  terminated = false;

  postMessage(request: HashRequest): void {
    this.received.push(request);
  }

  terminate(): void {
    this.terminated = true;
  }

  answer(request: HashRequest, reply: Omit<HashReply, "id"> = { sha256: `hash-of-${request.id}` }): void {
    this.onmessage?.({ data: { id: request.id, ...reply } as HashReply });
  }

  async answerForReal(request: HashRequest): Promise<void> {
    this.answer(request, { sha256: await sha256Hex(request.blob) });
  }

  crash(message: string): void {
    this.onerror?.({ message, preventDefault: () => undefined });
  }
}

function pool(size = 2) {
  const workers: FakeWorker[] = [];
  const hasher = new WorkerHasher(size, () => {
    const worker = new FakeWorker();
    workers.push(worker);
    return worker as unknown as Worker;
  });
  return { hasher, workers };
}

describe("WorkerHasher", () => {
  it("hashes a Blob in a worker", async () => {
    const { hasher, workers } = pool();
    const result = hasher.hash(new Blob(["abc"]));
    await workers[0]!.answerForReal(workers[0]!.received[0]!);
    expect(await result).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("starts workers lazily, at most `size`, and gives each request to the least busy one", () => {
    const { hasher, workers } = pool(2);
    expect(workers).toHaveLength(0);
    for (let i = 0; i < 5; i += 1) void hasher.hash(new Blob([String(i)]));
    expect(workers).toHaveLength(2);
    expect(workers.map((w) => w.received.length)).toEqual([3, 2]);
  });

  it("matches answers to requests by id, in any order", async () => {
    const { hasher, workers } = pool(1);
    const first = hasher.hash(new Blob(["a"]));
    const second = hasher.hash(new Blob(["b"]));
    const [a, b] = workers[0]!.received;
    workers[0]!.answer(b!, { sha256: "second" });
    workers[0]!.answer(a!, { sha256: "first" });
    expect(await Promise.all([first, second])).toEqual(["first", "second"]);
  });

  it("rejects only the request whose hashing failed", async () => {
    const { hasher, workers } = pool(1);
    const bad = hasher.hash(new Blob(["a"]));
    const good = hasher.hash(new Blob(["b"]));
    const [a, b] = workers[0]!.received;
    workers[0]!.answer(a!, { error: "the file could not be read", name: "NotReadableError" });
    workers[0]!.answer(b!);
    // The error's name survives the trip, so the engine can say the file can no longer be read.
    await expect(bad).rejects.toMatchObject({ name: "NotReadableError", message: "hashing failed: the file could not be read" });
    await expect(good).resolves.toBe(`hash-of-${b!.id}`);
  });

  it("fails the requests of a crashed worker and replaces it", async () => {
    const { hasher, workers } = pool(1);
    const lost = hasher.hash(new Blob(["a"]));
    workers[0]!.crash("failed to load");
    await expect(lost).rejects.toThrow(/failed to load/);
    expect(workers[0]!.terminated).toBe(true);
    const next = hasher.hash(new Blob(["b"]));
    expect(workers).toHaveLength(2);
    workers[1]!.answer(workers[1]!.received[0]!);
    await expect(next).resolves.toMatch(/^hash-of-/);
  });

  it("terminates its workers on dispose and rejects what is pending", async () => {
    const { hasher, workers } = pool(2);
    const pending = hasher.hash(new Blob(["a"]));
    hasher.dispose();
    expect(workers[0]!.terminated).toBe(true);
    await expect(pending).rejects.toThrow(/stopped/);
  });
});
