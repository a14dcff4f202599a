// Byte accounting for one upload: which chunks the server holds, what is in flight, and speed.

/** How the server cut the file: chunk n (1-based) is bytes [(n-1)*chunkSize, n*chunkSize). */
export class ChunkLayout {
  readonly fileSize: number;
  readonly chunkSize: number;
  readonly totalChunks: number;

  constructor(fileSize: number, chunkSize: number, totalChunks: number) {
    this.fileSize = fileSize;
    this.chunkSize = chunkSize;
    this.totalChunks = totalChunks;
  }

  /** [start, end) byte offsets of chunk n. */
  range(n: number): [number, number] {
    const start = (n - 1) * this.chunkSize;
    return [start, Math.min(this.fileSize, start + this.chunkSize)];
  }

  size(n: number): number {
    const [start, end] = this.range(n);
    return Math.max(0, end - start);
  }
}

/**
 * Stored chunks plus bytes in flight. A failed or aborted chunk's in-flight bytes drop out of
 * `currentBytes`, but `bytesDone` is a high-water mark so the bar never moves backwards: it
 * simply stands still until the resent bytes overtake it.
 */
export class TransferProgress {
  readonly layout: ChunkLayout;
  private readonly stored = new Set<number>();
  private storedBytes = 0;
  private readonly inFlight = new Map<number, number>();
  private highWater = 0;

  constructor(layout: ChunkLayout) {
    this.layout = layout;
  }

  get bytesDone(): number {
    return this.highWater;
  }

  /** Stored plus in-flight bytes right now; may drop when a chunk fails. */
  get currentBytes(): number {
    let bytes = this.storedBytes;
    for (const sent of this.inFlight.values()) bytes += sent;
    return bytes;
  }

  get chunksDone(): number {
    return this.stored.size;
  }

  isStored(n: number): boolean {
    return this.stored.has(n);
  }

  /** Chunk numbers the server does not have yet, ascending. */
  missing(): number[] {
    const missing: number[] = [];
    for (let n = 1; n <= this.layout.totalChunks; n += 1) if (!this.stored.has(n)) missing.push(n);
    return missing;
  }

  markStored(n: number): void {
    this.inFlight.delete(n);
    if (!this.stored.has(n)) {
      this.stored.add(n);
      this.storedBytes += this.layout.size(n);
    }
    this.raise();
  }

  /** Replace what we believe is stored with the server's list (on resume or retry). */
  resetStored(chunks: Iterable<number>): void {
    this.stored.clear();
    this.storedBytes = 0;
    this.inFlight.clear();
    for (const n of chunks) this.markStored(n);
  }

  markAllStored(): void {
    for (let n = 1; n <= this.layout.totalChunks; n += 1) this.markStored(n);
  }

  sending(n: number, sentBytes: number): void {
    this.inFlight.set(n, Math.min(Math.max(0, sentBytes), this.layout.size(n)));
    this.raise();
  }

  drop(n: number): void {
    this.inFlight.delete(n);
  }

  dropAll(): void {
    this.inFlight.clear();
  }

  private raise(): void {
    this.highWater = Math.max(this.highWater, Math.min(this.layout.fileSize, this.currentBytes));
  }
}

/**
 * Smoothed throughput: an exponentially weighted moving average over roughly `windowMs`, fed
 * with samples at least `minIntervalMs` apart so bursts of progress events don't make it jumpy.
 * Bytes that drop out (a failed chunk) are not negative throughput; the baseline just moves.
 */
export class ThroughputMeter {
  private readonly windowMs: number;
  private readonly minIntervalMs: number;
  private rate = 0;
  private primed = false;
  private last: { time: number; bytes: number } | null = null;

  constructor(windowMs = 2500, minIntervalMs = 250) {
    this.windowMs = windowMs;
    this.minIntervalMs = minIntervalMs;
  }

  get bytesPerSecond(): number {
    return this.rate;
  }

  /** Forget history (after a pause, the idle time must not count as slowness). */
  restart(): void {
    this.rate = 0;
    this.primed = false;
    this.last = null;
  }

  sample(bytes: number, now: number): void {
    if (this.last === null) {
      this.last = { time: now, bytes };
      return;
    }
    if (bytes < this.last.bytes) this.last = { time: this.last.time, bytes };
    const elapsed = now - this.last.time;
    if (elapsed < this.minIntervalMs) return;
    const instant = ((bytes - this.last.bytes) * 1000) / elapsed;
    // The first full interval sets the rate outright; ramping up from 0 would under-report for seconds.
    const weight = this.primed ? 1 - Math.exp(-elapsed / this.windowMs) : 1;
    this.rate += weight * (instant - this.rate);
    this.primed = true;
    this.last = { time: now, bytes };
  }
}
