import { describe, expect, it } from "vitest";
import { ChunkLayout, ThroughputMeter, TransferProgress } from "./progress";

describe("ChunkLayout", () => {
  it("cuts the file into full chunks and a remainder", () => {
    const layout = new ChunkLayout(10, 4, 3);
    expect([1, 2, 3].map((n) => layout.range(n))).toEqual([[0, 4], [4, 8], [8, 10]]);
    expect([1, 2, 3].map((n) => layout.size(n))).toEqual([4, 4, 2]);
  });
});

describe("TransferProgress", () => {
  it("counts stored chunks once and in-flight bytes on top", () => {
    const progress = new TransferProgress(new ChunkLayout(10, 4, 3));
    progress.markStored(1);
    progress.markStored(1);
    progress.sending(3, 1);
    expect(progress.bytesDone).toBe(5);
    expect(progress.chunksDone).toBe(1);
    expect(progress.missing()).toEqual([2, 3]);
  });

  it("keeps the high-water mark when in-flight bytes drop out", () => {
    const progress = new TransferProgress(new ChunkLayout(12, 4, 3));
    progress.sending(1, 3);
    progress.sending(2, 4);
    progress.drop(2);
    expect(progress.currentBytes).toBe(3);
    expect(progress.bytesDone).toBe(7);
    progress.sending(2, 2);
    expect(progress.bytesDone).toBe(7);
    progress.sending(2, 4);
    progress.sending(3, 1);
    expect(progress.bytesDone).toBe(8);
  });

  it("never counts more than the chunk or the file", () => {
    const progress = new TransferProgress(new ChunkLayout(6, 4, 2));
    progress.sending(2, 100);
    expect(progress.bytesDone).toBe(2);
    progress.markAllStored();
    expect(progress.bytesDone).toBe(6);
  });

  it("takes the server's list on resume without going backwards", () => {
    const progress = new TransferProgress(new ChunkLayout(12, 4, 3));
    progress.markStored(1);
    progress.markStored(2);
    progress.resetStored([1]);
    expect(progress.missing()).toEqual([2, 3]);
    expect(progress.currentBytes).toBe(4);
    expect(progress.bytesDone).toBe(8);
  });
});

describe("ThroughputMeter", () => {
  it("reports the first interval's rate at once", () => {
    const meter = new ThroughputMeter(2500, 250);
    meter.sample(0, 0);
    meter.sample(1000, 500);
    expect(meter.bytesPerSecond).toBe(2000);
  });

  it("ignores samples closer than the minimum interval", () => {
    const meter = new ThroughputMeter(2500, 250);
    meter.sample(0, 0);
    meter.sample(5000, 10);
    expect(meter.bytesPerSecond).toBe(0);
  });

  it("moves towards a new rate over a few seconds instead of jumping", () => {
    const meter = new ThroughputMeter(2500, 250);
    meter.sample(0, 0);
    meter.sample(1000, 1000); // 1000 B/s
    meter.sample(1000, 2000); // stalled for a second
    const afterOneSecond = meter.bytesPerSecond;
    expect(afterOneSecond).toBeGreaterThan(500);
    expect(afterOneSecond).toBeLessThan(1000);
    for (let t = 3000; t <= 12_000; t += 1000) meter.sample(1000, t);
    expect(meter.bytesPerSecond).toBeLessThan(30);
  });

  it("does not read dropped in-flight bytes as negative speed", () => {
    const meter = new ThroughputMeter(2500, 250);
    meter.sample(0, 0);
    meter.sample(1000, 1000);
    meter.sample(400, 1100); // a chunk failed
    meter.sample(900, 2000);
    expect(meter.bytesPerSecond).toBeGreaterThan(0);
  });

  it("forgets the past on restart", () => {
    const meter = new ThroughputMeter(2500, 250);
    meter.sample(0, 0);
    meter.sample(1000, 1000);
    meter.restart();
    expect(meter.bytesPerSecond).toBe(0);
    meter.sample(1000, 50_000);
    meter.sample(4000, 51_000);
    expect(meter.bytesPerSecond).toBe(3000);
  });
});
