// The real Transport: JSON calls through fetch, chunk bodies through XMLHttpRequest (the only
// browser API that reports upload progress of a request body).

import type { ChunkList, UploadCreated, UploadView } from "../api/types";
import { CSRF_HEADER, ensureCsrfToken } from "../api/csrf";
import { parseRetryAfter } from "../api/retry-after";
import { abortError } from "./signals";
import { HttpError, NetworkError, type Transport } from "./types";

type Method = "GET" | "POST" | "PUT" | "DELETE";

export class HttpTransport implements Transport {
  private readonly base: string;
  private readonly csrfToken: () => Promise<string>;

  constructor(base = "/api/v1", csrfToken: () => Promise<string> = ensureCsrfToken) {
    this.base = base;
    this.csrfToken = csrfToken;
  }

  createUpload(request: { file_name: string; file_type: string; file_size: number }): Promise<UploadCreated> {
    return this.json<UploadCreated>("POST", "/uploads", request);
  }

  getUpload(uploadId: string): Promise<UploadView> {
    return this.json<UploadView>("GET", `/uploads/${encodeURIComponent(uploadId)}`);
  }

  /** Follows `next_cursor` page by page, so the caller always gets the whole list. */
  async listChunks(uploadId: string): Promise<ChunkList> {
    const path = `/uploads/${encodeURIComponent(uploadId)}/chunks`;
    const chunks: number[] = [];
    const hashes: Record<string, string> = {};
    const cursorsSeen = new Set<string>();
    let cursor: string | null = null;
    do {
      const page: ChunkList = await this.json<ChunkList>(
        "GET",
        cursor === null ? path : `${path}?cursor=${encodeURIComponent(cursor)}`,
      );
      chunks.push(...page.chunks);
      Object.assign(hashes, page.hashes);
      cursor = page.next_cursor ?? null;
      // A server that hands out a cursor twice would keep us paging forever.
      if (cursor !== null && cursorsSeen.has(cursor)) throw new Error("the server's list of stored chunks never ends");
      if (cursor !== null) cursorsSeen.add(cursor);
    } while (cursor !== null);
    return { chunks, hashes };
  }

  async cancelUpload(uploadId: string): Promise<void> {
    await this.json<void>("DELETE", `/uploads/${encodeURIComponent(uploadId)}`);
  }

  async refreshSession(): Promise<void> {
    await this.json<void>("POST", "/auth/refresh");
  }

  async putChunk(
    uploadId: string,
    n: number,
    body: Blob,
    sha256: string,
    options: { signal: AbortSignal; onProgress: (sentBytes: number) => void },
  ): Promise<void> {
    const token = await this.csrfToken();
    const url = `${this.base}/uploads/${encodeURIComponent(uploadId)}/chunks/${n}`;
    return sendWithProgress(url, body, { "X-Chunk-Hash": sha256, [CSRF_HEADER]: token }, options);
  }

  private async json<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers[CSRF_HEADER] = await this.csrfToken();
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? null : JSON.stringify(body),
      });
    } catch (error) {
      // fetch rejects (a TypeError) only when no answer came at all.
      throw new NetworkError(error instanceof Error ? error.message : undefined);
    }
    const text = await response.text();
    if (!response.ok) {
      throw httpError(response.status, text, response.statusText, response.headers.get("Retry-After"));
    }
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }
}

function sendWithProgress(
  url: string,
  body: Blob,
  headers: Record<string, string>,
  options: { signal: AbortSignal; onProgress: (sentBytes: number) => void },
): Promise<void> {
  const { signal, onProgress } = options;
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError());
      return;
    }
    const xhr = new XMLHttpRequest();
    const onAbort = () => xhr.abort();
    xhr.open("PUT", url);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(httpError(xhr.status, xhr.responseText, xhr.statusText, xhr.getResponseHeader("Retry-After")));
    };
    xhr.onerror = () => reject(new NetworkError("the connection failed while sending a chunk"));
    xhr.ontimeout = () => reject(new NetworkError("sending a chunk timed out"));
    xhr.onabort = () => reject(abortError());
    xhr.onloadend = () => signal.removeEventListener("abort", onAbort);
    signal.addEventListener("abort", onAbort, { once: true });
    // A Blob slice is streamed from disk by the browser; it is never read into memory here.
    xhr.send(body);
  });
}

function httpError(status: number, bodyText: string, statusText: string, retryAfter: string | null): HttpError {
  return new HttpError(status, errorText(bodyText) ?? (statusText || `HTTP ${status}`), parseRetryAfter(retryAfter));
}

/** The server's `{"error": "..."}` message, if the body is one. */
function errorText(bodyText: string): string | null {
  try {
    const parsed: unknown = JSON.parse(bodyText);
    if (typeof parsed === "object" && parsed !== null && "error" in parsed && typeof parsed.error === "string") {
      return parsed.error;
    }
  } catch {
    // Not JSON (a proxy's HTML error page, say): fall back to the status text.
  }
  return null;
}
