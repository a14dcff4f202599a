import { afterEach, describe, expect, it, vi } from "vitest";
import { sha256Hex } from "./digest";

afterEach(() => {
  vi.restoreAllMocks();
});

const ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

describe("sha256Hex", () => {
  it("hashes with Web Crypto where it exists", async () => {
    const digest = vi.spyOn(globalThis.crypto.subtle, "digest");
    expect(await sha256Hex(new Blob(["abc"]))).toBe(ABC);
    expect(digest).toHaveBeenCalledOnce();
  });

  it("falls back to JavaScript SHA-256 outside secure contexts", async () => {
    const digest = vi.spyOn(globalThis.crypto.subtle, "digest");
    expect(await sha256Hex(new Blob(["abc"]), null)).toBe(ABC);
    expect(digest).not.toHaveBeenCalled();
  });

  it("agrees between the two on a larger blob", async () => {
    const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 31) % 256);
    const blob = new Blob([bytes]);
    expect(await sha256Hex(blob, null)).toBe(await sha256Hex(blob));
  });
});
