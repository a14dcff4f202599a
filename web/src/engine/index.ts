// The upload engine's public surface. The UI imports only from here.

import { browserConnectivity } from "./connectivity";
import { HttpTransport } from "./http-transport";
import { UploadManager } from "./manager";
import type { EngineOptions, UploadEngine } from "./types";
import { WorkerHasher } from "./worker-hasher";

export * from "./types";
export type { ChunkList, UploadStatus, UploadView } from "../api/types";

export interface BrowserEngineOptions extends EngineOptions {
  /**
   * How to renew the sign-in after a 401. Pass the app's own shared refresh: the server ends the
   * whole sign-in when one refresh token is presented twice, so the page must never run two
   * refreshes at once. Defaults to a plain POST /auth/refresh.
   */
  refreshSession?: () => Promise<void>;
}

/** The HTTP transport, renewing the sign-in through the app's refresh when one is given. */
class AppTransport extends HttpTransport {
  private readonly refresh: (() => Promise<void>) | undefined;

  constructor(refresh: (() => Promise<void>) | undefined) {
    super();
    this.refresh = refresh;
  }

  override async refreshSession(): Promise<void> {
    await (this.refresh ? this.refresh() : super.refreshSession());
  }
}

/** The manager wired to the browser; disposing it also stops the hashing workers. */
class BrowserUploadEngine extends UploadManager {
  private readonly workerHasher: WorkerHasher;

  constructor(options: BrowserEngineOptions = {}) {
    const { refreshSession, ...engineOptions } = options;
    const hasher = new WorkerHasher();
    super(new AppTransport(refreshSession), hasher, browserConnectivity(), engineOptions);
    this.workerHasher = hasher;
  }

  override dispose(): void {
    super.dispose();
    this.workerHasher.dispose();
  }
}

/** The engine as the app uses it: /api/v1 over HTTP, SHA-256 in Web Workers, browser online events. */
export function createUploadEngine(options?: BrowserEngineOptions): UploadEngine {
  return new BrowserUploadEngine(options);
}
