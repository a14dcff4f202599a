import { describe, expect, it } from "vitest";
import { busyServerDelayMs, isTransient, retryDelayMs } from "./backoff";
import { HttpError, NetworkError } from "./types";

const options = { baseDelayMs: 500, maxDelayMs: 30_000 };
const boom = new HttpError(500, "boom");

describe("isTransient", () => {
  it.each([408, 429, 500, 502, 503, 504])("retries %i", (status) => {
    expect(isTransient(new HttpError(status, "x"))).toBe(true);
  });

  it.each([400, 401, 403, 404, 409, 410, 413, 415, 422, 507])("does not retry %i", (status) => {
    expect(isTransient(new HttpError(status, "x"))).toBe(false);
  });

  it("retries network errors but not programming errors", () => {
    expect(isTransient(new NetworkError())).toBe(true);
    expect(isTransient(new TypeError("x is undefined"))).toBe(false);
  });
});

describe("retryDelayMs", () => {
  it("doubles the jitter ceiling with each failure", () => {
    const justUnderOne = () => 0.999999;
    const delays = [1, 2, 3, 4, 5].map((failures) => retryDelayMs(failures, boom, options, justUnderOne));
    expect(delays).toEqual([499, 999, 1999, 3999, 7999]);
  });

  it("draws uniformly between zero and the ceiling (full jitter)", () => {
    expect(retryDelayMs(3, boom, options, () => 0)).toBe(0);
    expect(retryDelayMs(3, boom, options, () => 0.25)).toBe(500);
    const samples = Array.from({ length: 200 }, () => retryDelayMs(4, boom, options));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...samples)).toBeLessThan(4000);
    expect(new Set(samples).size).toBeGreaterThan(100);
  });

  it("never exceeds maxDelayMs, however many failures", () => {
    expect(retryDelayMs(40, boom, options, () => 0.999999)).toBe(29_999);
    expect(retryDelayMs(2000, boom, options, () => 0.999999)).toBe(29_999);
  });

  it("uses Retry-After exactly on 429 and 503, beyond the cap if need be", () => {
    expect(retryDelayMs(1, new HttpError(429, "slow", 3), options)).toBe(3000);
    expect(retryDelayMs(9, new HttpError(503, "down", 120), options)).toBe(120_000);
    expect(retryDelayMs(1, new HttpError(429, "slow", 0), options)).toBe(0);
  });

  it("ignores Retry-After on other statuses, and backs off when 429 has none", () => {
    expect(retryDelayMs(1, new HttpError(500, "boom", 60), options, () => 0.5)).toBe(250);
    expect(retryDelayMs(2, new HttpError(429, "slow"), options, () => 0.5)).toBe(500);
  });
});

describe("busyServerDelayMs", () => {
  it("is the Retry-After of a 429 or 503", () => {
    expect(busyServerDelayMs(new HttpError(429, "slow", 3))).toBe(3000);
    expect(busyServerDelayMs(new HttpError(503, "busy", 120))).toBe(120_000);
  });

  it("is null without a wait to honour: no Retry-After, a zero one, another status or no HTTP answer", () => {
    expect(busyServerDelayMs(new HttpError(503, "busy"))).toBeNull();
    expect(busyServerDelayMs(new HttpError(429, "slow", 0))).toBeNull();
    expect(busyServerDelayMs(new HttpError(500, "boom", 5))).toBeNull();
    expect(busyServerDelayMs(new NetworkError())).toBeNull();
  });
});
