import { describe, expect, it } from "vitest";
import { fileExtension, formatBytes, formatEta, formatPercent, formatSpeed } from "./format";

describe("format", () => {
  it("sizes in SI units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(12_000)).toBe("12.0 KB");
    expect(formatBytes(999_960)).toBe("1.0 MB");
    expect(formatBytes(30_000_000)).toBe("30.0 MB");
    expect(formatBytes(5 * 1024 ** 4)).toBe("5.5 TB");
    expect(formatSpeed(42_100_000)).toBe("42.1 MB/s");
  });

  it("percent never reaches 100 before the end", () => {
    expect(formatPercent(0.9999)).toBe("99.9%");
    expect(formatPercent(1)).toBe("100%");
    expect(formatPercent(0.238)).toBe("23.8%");
  });

  it("eta in words", () => {
    expect(formatEta(null)).toBeNull();
    expect(formatEta(3)).toBe("a few seconds left");
    expect(formatEta(44)).toBe("about 45 s left");
    expect(formatEta(130)).toBe("about 2 min left");
    expect(formatEta(3 * 3600 + 20 * 60)).toBe("about 3 h 20 min left");
    expect(formatEta(3600 * 2 + 3599)).toBe("about 3 h left");
    expect(formatEta(5 * 86400)).toBe("about 5 days left");
  });

  it("extensions", () => {
    expect(fileExtension("report.final.pdf")).toBe("PDF");
    expect(fileExtension("README")).toBeNull();
    expect(fileExtension(".bashrc")).toBeNull();
    expect(fileExtension("dot.")).toBeNull();
  });
});
