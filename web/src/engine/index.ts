// The upload engine's public surface. The UI imports only from here.

import { browserConnectivity } from "./connectivity";
import { HttpTransport } from "./http-transport";
import { UploadManager } from "./manager";
import type { EngineOptions, UploadEngine } from "./types";
import { WorkerHasher } from "./worker-hasher";

export * from "./types";
export type { ChunkList, UploadStatus, UploadView } from "../api/types";

/** The manager wired to the browser; disposing it also stops the hashing workers. */
class BrowserUploadEngine extends UploadManager {
  private readonly workerHasher: WorkerHasher;

  constructor(options?: EngineOptions) {
    const hasher = new WorkerHasher();
    super(new HttpTransport(), hasher, browserConnectivity(), options);
    this.workerHasher = hasher;
  }

  override dispose(): void {
    super.dispose();
    this.workerHasher.dispose();
  }
}

/** The engine as the app uses it: /api/v1 over HTTP, SHA-256 in Web Workers, browser online events. */
export function createUploadEngine(options?: EngineOptions): UploadEngine {
  return new BrowserUploadEngine(options);
}
