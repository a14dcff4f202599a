// A small typed client for the LFUSYS JSON API (/api/v1). Cookies carry the session, so every call is
// same-origin with credentials; state-changing calls echo the CSRF cookie in X-CSRF-Token.

import { CSRF_HEADER, ensureCsrfToken } from "./csrf";
import { parseRetryAfter } from "./retry-after";
import type {
  DownloadLink,
  FileList,
  ProviderList,
  TokenCreate,
  TokenCreated,
  TokenList,
  UploadList,
  User,
} from "./types";

const BASE = "/api/v1";

/** Paths whose 401 means "wrong credentials" or "session over", never "access token expired". */
const NO_REFRESH = new Set(["/auth/login", "/auth/register", "/auth/refresh"]);

const FALLBACK_MESSAGES: Record<number, string> = {
  0: "Cannot reach the server",
  400: "The request was not valid",
  401: "You are not signed in",
  403: "You are not allowed to do that",
  404: "Not found",
  409: "That conflicts with the current state",
  410: "This is no longer available",
  413: "That is too large",
  415: "That type is not supported",
  422: "The data did not check out",
  429: "Too many requests; wait a moment and try again",
  500: "The server had a problem",
  502: "The server is not answering",
  503: "The service is temporarily unavailable",
  504: "The server took too long to answer",
};

/** A failed API call: `status` is the HTTP status (0 when no answer came), `message` in plain words. */
export class ApiError extends Error {
  readonly status: number;
  /** Seconds from a Retry-After header (429, 503), if any. */
  readonly retryAfterSeconds: number | null;

  constructor(status: number, message: string, retryAfterSeconds: number | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export function fallbackMessage(status: number): string {
  return FALLBACK_MESSAGES[status] ?? `The request failed (HTTP ${status})`;
}

/** A message fit to show: server messages come in lower case ("invalid email or password"). */
export function errorMessage(error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  const text = raw.trim() || "Something went wrong";
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// --- session lifetime ---------------------------------------------------------------------------

type Listener = () => void;
const sessionEndedListeners = new Set<Listener>();

/** Called when a refresh fails: the user must sign in again. Returns an unsubscribe function. */
export function onSessionEnded(listener: Listener): () => void {
  sessionEndedListeners.add(listener);
  return () => sessionEndedListeners.delete(listener);
}

function endSession(): void {
  for (const listener of sessionEndedListeners) listener();
}

let refreshing: Promise<void> | null = null;
const REFRESH_LOCK = "lfusys-auth-refresh";

/**
 * Rotate the session cookies. Concurrent callers share one request: the server revokes the whole
 * sign-in when a refresh token is presented twice, so two parallel refreshes would sign the user out.
 */
export function refreshSession(): Promise<void> {
  if (!refreshing) {
    const run = async () => {
      const response = await send("POST", "/auth/refresh");
      if (!response.ok) throw await toApiError(response);
    };
    // Other tabs refresh too: a Web Lock (secure contexts only) keeps their refreshes one at a time,
    // so each one presents the current refresh cookie rather than one another tab just spent.
    const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
    refreshing = (locks ? locks.request(REFRESH_LOCK, run) : run())
      .catch((error: unknown) => {
        // A refused refresh ends the sign-in; a network failure or a 5xx does not.
        if (error instanceof ApiError && error.status >= 400 && error.status < 500) endSession();
        throw error;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

// --- transport ----------------------------------------------------------------------------------

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

async function send(method: Method, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET") headers[CSRF_HEADER] = await csrfOrNetworkError();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(BASE + path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    // fetch rejects only when no HTTP answer came at all.
    throw new ApiError(0, fallbackMessage(0));
  }
}

async function csrfOrNetworkError(): Promise<string> {
  try {
    return await ensureCsrfToken();
  } catch {
    throw new ApiError(0, fallbackMessage(0));
  }
}

async function toApiError(response: Response): Promise<ApiError> {
  let message = "";
  try {
    const data: unknown = await response.json();
    if (data && typeof data === "object" && typeof (data as { error?: unknown }).error === "string") {
      message = (data as { error: string }).error;
    }
  } catch {
    // Not JSON (a proxy's HTML error page, an empty body): use the plain-words fallback.
  }
  const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
  return new ApiError(
    response.status,
    message || fallbackMessage(response.status),
    retryAfter !== null && retryAfter > 0 ? retryAfter : null,
  );
}

async function request<T>(method: Method, path: string, body?: unknown): Promise<T> {
  let response = await send(method, path, body);
  if (response.status === 401 && !NO_REFRESH.has(path)) {
    // The access cookie lives minutes; the refresh cookie weeks. Refresh once and replay.
    try {
      await refreshSession();
    } catch (error) {
      if (error instanceof ApiError && error.status === 0) throw error;
      throw await toApiError(response);
    }
    response = await send(method, path, body);
    if (response.status === 401) endSession();
  }
  if (!response.ok) throw await toApiError(response);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

// --- endpoints ----------------------------------------------------------------------------------

export function register(data: { name: string; email: string; password: string }): Promise<User> {
  return request<User>("POST", "/auth/register", data);
}

export function login(data: { email: string; password: string }): Promise<User> {
  return request<User>("POST", "/auth/login", data);
}

/** Set the first password (no `current_password`) or change it; 403 when `current_password` is wrong. */
export function setPassword(data: { password: string; current_password?: string }): Promise<void> {
  return request<void>("PUT", "/auth/password", data);
}

export function logout(): Promise<void> {
  return request<void>("POST", "/auth/logout");
}

/** The signed-in user; rejects with status 401 when nobody is signed in. */
export function me(): Promise<User> {
  return request<User>("GET", "/auth/me");
}

export function providers(): Promise<ProviderList> {
  return request<ProviderList>("GET", "/auth/providers");
}

/** One page of the caller's unfinished uploads, newest first; pass `next_cursor` for the next page. */
export function listUploads(options: PageOptions = {}): Promise<UploadList> {
  return request<UploadList>("GET", `/uploads${pageQuery(options)}`);
}

export function cancelUpload(uploadId: string): Promise<void> {
  return request<void>("DELETE", `/uploads/${encodeURIComponent(uploadId)}`);
}

export function listFiles(options: PageOptions = {}): Promise<FileList> {
  return request<FileList>("GET", `/files${pageQuery(options)}`);
}

export interface PageOptions {
  limit?: number;
  cursor?: string | null;
}

function pageQuery(options: PageOptions): string {
  const query = new URLSearchParams();
  if (options.limit !== undefined) query.set("limit", String(options.limit));
  if (options.cursor) query.set("cursor", options.cursor);
  return query.toString() ? `?${query.toString()}` : "";
}

export function downloadLink(fileId: string): Promise<DownloadLink> {
  return request<DownloadLink>("GET", `/files/${encodeURIComponent(fileId)}/download`);
}

export function deleteFile(fileId: string): Promise<void> {
  return request<void>("DELETE", `/files/${encodeURIComponent(fileId)}`);
}

/** A personal API token; the answer carries its secret, which the server never sends again. */
export function createToken(data: TokenCreate): Promise<TokenCreated> {
  return request<TokenCreated>("POST", "/tokens", data);
}

/** The caller's API tokens, newest first, without their secrets. */
export function listTokens(): Promise<TokenList> {
  return request<TokenList>("GET", "/tokens");
}

/** Revoke a token at once; 404 when there is no such token. */
export function revokeToken(tokenId: string): Promise<void> {
  return request<void>("DELETE", `/tokens/${encodeURIComponent(tokenId)}`);
}

/** Provider sign-in starts with a full-page navigation (OAuth redirects), not a fetch. */
/** Where "Continue with …" goes: the server redirects to the provider, and after the sign-in back to `next`. */
export function providerLoginUrl(provider: string, next?: string): string {
  const query = next ? `?${new URLSearchParams({ next }).toString()}` : "";
  return `${BASE}/auth/${encodeURIComponent(provider)}/login${query}`;
}
