// JSON shapes of the LFUSYS HTTP API (/api/v1), as the server sends them.

export interface User {
  id: string;
  email: string;
  name: string;
  providers: string[];
}

export interface ProviderList {
  providers: string[];
}

export interface UploadCreated {
  upload_id: string;
  chunk_size: number;
  total_chunks: number;
  expires_at: string;
}

export type UploadStatus =
  | "pending"
  | "in_progress"
  | "finalizing"
  | "completed"
  | "cancelled"
  | "expired"
  | "failed";

export interface UploadView {
  upload_id: string;
  file_name: string;
  file_type: string;
  file_size: number;
  status: UploadStatus;
  /** Percentage of chunks stored, 0 to 100. */
  progress: number;
  uploaded_chunks: number;
  total_chunks: number;
  chunk_size: number;
  created_at: string;
  expires_at: string;
  file_id: string | null;
  /** Why the server gave up assembling the file (status "failed"), in words; null otherwise. */
  failure_reason: string | null;
}

export interface UploadList {
  uploads: UploadView[];
  next_cursor: string | null;
}

export interface ChunkList {
  /** Numbers of the chunks already stored (1-based), ascending. */
  chunks: number[];
  /** SHA-256 (lower-case hex) of stored chunks, keyed by chunk number as a string. */
  hashes: Record<string, string>;
  /** Pass back as `cursor` for the next page; null or absent on the last page. */
  next_cursor?: string | null;
}

export interface ChunkReceipt {
  n: number;
  size: number;
  sha256: string;
  already_stored: boolean;
}

export interface FileView {
  id: string;
  name: string;
  type: string;
  size: number;
  checksum: string;
  created_at: string;
}

export interface FileList {
  files: FileView[];
  next_cursor: string | null;
}

export interface DownloadLink {
  url: string;
  file_name: string;
  file_type: string;
  expires_in_seconds: number;
}

export type TokenScope = "upload" | "read" | "delete";

export interface TokenCreate {
  /** 1 to 100 characters. */
  name: string;
  /** At least one, no repeats. */
  scopes: TokenScope[];
  /** 1 to 3650; leave out for a token that never expires. */
  expires_in_days?: number;
}

export interface TokenView {
  id: string;
  name: string;
  scopes: TokenScope[];
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
}

/** The answer to creating a token: the only time the secret (`lfusys_…`) is ever sent. */
export interface TokenCreated {
  id: string;
  name: string;
  scopes: TokenScope[];
  token: string;
  created_at: string;
  expires_at: string | null;
}

export interface TokenList {
  /** Newest first; never the secret. */
  tokens: TokenView[];
}

/** Every error response: `{"error": "<message>"}` with the HTTP status. */
export interface ErrorBody {
  error: string;
}
