import { afterEach, describe, expect, it, vi } from "vitest";
import { parseRetryAfter } from "../api/retry-after";
import { HttpTransport } from "./http-transport";
import { HttpError, NetworkError } from "./types";

afterEach(() => {
  vi.unstubAllGlobals();
});

function stubFetch(response: () => Response | Promise<Response>) {
  const fetch = vi.fn<(url: string, init: RequestInit) => Promise<Response>>(async () => response());
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

const transport = () => new HttpTransport("/api/v1", async () => "csrf-token");
const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

describe("JSON calls", () => {
  it("creates an upload with a JSON body, the CSRF token and same-origin cookies", async () => {
    const created = { upload_id: "u1", chunk_size: 8, total_chunks: 2, expires_at: "later" };
    const fetch = stubFetch(() => json(created, 201));
    const request = { file_name: "a.bin", file_type: "", file_size: 12 };
    expect(await transport().createUpload(request)).toEqual(created);
    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe("/api/v1/uploads");
    expect(init.method).toBe("POST");
    expect(init.credentials).toBe("same-origin");
    expect(init.body).toBe(JSON.stringify(request));
    expect(init.headers).toMatchObject({ "Content-Type": "application/json", "X-CSRF-Token": "csrf-token" });
  });

  it("reads sessions and chunk lists with GET and no CSRF token", async () => {
    const fetch = stubFetch(() => json({ chunks: [1], hashes: { "1": "ab" } }));
    expect(await transport().listChunks("u/1")).toEqual({ chunks: [1], hashes: { "1": "ab" } });
    await transport().getUpload("u1");
    expect(fetch.mock.calls.map(([url, init]) => [url, init.method])).toEqual([
      ["/api/v1/uploads/u%2F1/chunks", "GET"],
      ["/api/v1/uploads/u1", "GET"],
    ]);
    expect(fetch.mock.calls[0]![1].headers).not.toHaveProperty("X-CSRF-Token");
  });

  it("follows next_cursor through every page of the chunk list", async () => {
    const pages: Record<string, unknown> = {
      "/api/v1/uploads/u1/chunks": { chunks: [1, 2], hashes: { "1": "aa", "2": "bb" }, next_cursor: "after 2" },
      "/api/v1/uploads/u1/chunks?cursor=after%202": { chunks: [3], hashes: {}, next_cursor: "after 3" },
      "/api/v1/uploads/u1/chunks?cursor=after%203": { chunks: [5], hashes: { "5": "ee" }, next_cursor: null },
    };
    const fetch = vi.fn<(url: string, init: RequestInit) => Promise<Response>>(async (url) => json(pages[url]));
    vi.stubGlobal("fetch", fetch);
    expect(await transport().listChunks("u1")).toEqual({ chunks: [1, 2, 3, 5], hashes: { "1": "aa", "2": "bb", "5": "ee" } });
    expect(fetch.mock.calls.map(([url]) => url)).toEqual(Object.keys(pages));
  });

  it("refuses a chunk list whose cursor comes back again, rather than page forever", async () => {
    stubFetch(() => json({ chunks: [1], hashes: {}, next_cursor: "same" }));
    await expect(transport().listChunks("u1")).rejects.toThrow("never ends");
  });

  it("cancels with DELETE and refreshes with POST, accepting empty answers", async () => {
    const fetch = stubFetch(() => new Response(null, { status: 204 }));
    await transport().cancelUpload("u1");
    await transport().refreshSession();
    expect(fetch.mock.calls.map(([url, init]) => [url, init.method])).toEqual([
      ["/api/v1/uploads/u1", "DELETE"],
      ["/api/v1/auth/refresh", "POST"],
    ]);
    expect(fetch.mock.calls[1]![1].headers).toMatchObject({ "X-CSRF-Token": "csrf-token" });
  });

  it("turns an error answer into HttpError with the server's message and Retry-After", async () => {
    stubFetch(() => json({ error: "too many requests" }, 429, { "Retry-After": "12" }));
    const error = await transport().getUpload("u1").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({ status: 429, message: "too many requests", retryAfterSeconds: 12 });
  });

  it("falls back to the status text when the error body is not JSON", async () => {
    stubFetch(() => new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
    await expect(transport().getUpload("u1")).rejects.toMatchObject({ status: 502, message: "Bad Gateway", retryAfterSeconds: null });
  });

  it("reports a failed connection as NetworkError", async () => {
    stubFetch(() => Promise.reject(new TypeError("Failed to fetch")));
    await expect(transport().getUpload("u1")).rejects.toBeInstanceOf(NetworkError);
  });
});

type Handler = (() => void) | null;

class FakeXhr {
  static sent: FakeXhr[] = [];
  method = "";
  url = "";
  headers: Record<string, string> = {};
  body: unknown = undefined;
  aborted = false;
  status = 0;
  statusText = "";
  responseText = "";
  responseHeaders: Record<string, string> = {};
  upload: { onprogress: ((event: { loaded: number }) => void) | null } = { onprogress: null };
  onload: Handler = null;
  onerror: Handler = null;
  ontimeout: Handler = null;
  onabort: Handler = null;
  onloadend: Handler = null;

  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
  }

  send(body: unknown): void {
    this.body = body;
    FakeXhr.sent.push(this);
  }

  getResponseHeader(name: string): string | null {
    return this.responseHeaders[name] ?? null;
  }

  abort(): void {
    this.aborted = true;
    this.onabort?.();
    this.onloadend?.();
  }

  respond(status: number, responseText = "", responseHeaders: Record<string, string> = {}): void {
    Object.assign(this, { status, responseText, responseHeaders });
    this.onload?.();
    this.onloadend?.();
  }

  fail(): void {
    this.onerror?.();
    this.onloadend?.();
  }
}

describe("putChunk", () => {
  const sendChunk = (signal = new AbortController().signal, onProgress: (sent: number) => void = () => undefined) => {
    FakeXhr.sent = [];
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
    const body = new Blob(["0123456789"]);
    const result = transport().putChunk("u1", 3, body, "f".repeat(64), { signal, onProgress });
    return { body, result, xhr: async () => {
      await vi.waitUntil(() => FakeXhr.sent.length === 1);
      return FakeXhr.sent[0]!;
    } };
  };

  it("PUTs the Blob itself with the hash and CSRF headers, and reports progress", async () => {
    const sent: number[] = [];
    const { body, result, xhr } = sendChunk(undefined, (n) => {
      sent.push(n);
    });
    const request = await xhr();
    expect(request.method).toBe("PUT");
    expect(request.url).toBe("/api/v1/uploads/u1/chunks/3");
    expect(request.body).toBe(body);
    expect(request.headers).toEqual({
      "Content-Type": "application/octet-stream",
      "X-Chunk-Hash": "f".repeat(64),
      "X-CSRF-Token": "csrf-token",
    });
    request.upload.onprogress?.({ loaded: 4 });
    request.upload.onprogress?.({ loaded: 10 });
    request.respond(200, JSON.stringify({ n: 3, size: 10, sha256: "f", already_stored: false }));
    await expect(result).resolves.toBeUndefined();
    expect(sent).toEqual([4, 10]);
  });

  it("maps an error status to HttpError with the server's message and Retry-After", async () => {
    const { result, xhr } = sendChunk();
    (await xhr()).respond(503, JSON.stringify({ error: "storage unavailable" }), { "Retry-After": "5" });
    await expect(result).rejects.toMatchObject({ name: "HttpError", status: 503, message: "storage unavailable", retryAfterSeconds: 5 });
  });

  it("maps a dropped connection to NetworkError", async () => {
    const { result, xhr } = sendChunk();
    (await xhr()).fail();
    await expect(result).rejects.toBeInstanceOf(NetworkError);
  });

  it("aborts the request when the signal aborts", async () => {
    const controller = new AbortController();
    const { result, xhr } = sendChunk(controller.signal);
    const request = await xhr();
    controller.abort();
    expect(request.aborted).toBe(true);
    await expect(result).rejects.toMatchObject({ name: "AbortError" });
  });

  it("sends nothing when the signal is already aborted", async () => {
    const { result } = sendChunk(AbortSignal.abort());
    await expect(result).rejects.toMatchObject({ name: "AbortError" });
    expect(FakeXhr.sent).toEqual([]);
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(parseRetryAfter("30", now)).toBe(30);
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:01:00 GMT", now)).toBe(60);
    expect(parseRetryAfter("Tue, 31 Dec 2024 00:00:00 GMT", now)).toBe(0);
  });

  it("returns null for absent or unreadable values", () => {
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("")).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
  });
});
