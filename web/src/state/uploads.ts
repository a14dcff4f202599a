// The one upload engine of the app, kept outside React so uploads keep running across pages.
// React reads its snapshots through useSyncExternalStore (see useUploads).

import { useSyncExternalStore } from "react";
import { refreshSession } from "../api/client";
import { createUploadEngine, type UploadEngine, type UploadSnapshot, type UploadView } from "../engine";

let engine: UploadEngine | null = null;
let detach: (() => void) | null = null;
let owner: string | null = null;
let snapshots: readonly UploadSnapshot[] = [];
const listeners = new Set<() => void>();

/** Image previews (object URLs) by local upload id; revoked when the upload leaves the queue. */
const previews = new Map<string, string>();
/** Decoding a huge image just for a thumbnail would stall the page. */
const PREVIEW_MAX_BYTES = 50_000_000;

function emit(): void {
  for (const listener of listeners) listener();
}

function setSnapshots(next: readonly UploadSnapshot[]): void {
  snapshots = next;
  const present = new Set(next.map((s) => s.id));
  for (const [id, url] of previews) {
    if (!present.has(id)) {
      URL.revokeObjectURL(url);
      previews.delete(id);
    }
  }
  emit();
}

export function getEngine(): UploadEngine {
  if (!engine) {
    // One refresh for the whole page: the engine must not race the app's own (see api/client.ts).
    const created = createUploadEngine({ refreshSession });
    engine = created;
    // Copy: the store must hand React a new array only when something changed.
    detach = created.subscribe((next) => setSnapshots([...next]));
    // No emit here: this may run during a render, and a fresh engine's queue is empty anyway.
    snapshots = [...created.snapshots()];
  }
  return engine;
}

/** Stop every upload and start over with an empty queue (sign-out, another account). */
export function resetEngine(): void {
  if (!engine) return;
  detach?.();
  engine.dispose();
  engine = null;
  detach = null;
  setSnapshots([]);
}

/** Bind the engine to an account; switching accounts drops the previous account's queue. */
export function claimEngine(userId: string): void {
  if (owner !== null && owner !== userId) resetEngine();
  owner = userId;
}

function addPreview(id: string, file: File): void {
  if (!file.type.startsWith("image/") || file.size > PREVIEW_MAX_BYTES || previews.has(id)) return;
  previews.set(id, URL.createObjectURL(file));
  // A new array so useSyncExternalStore re-renders the row with its thumbnail.
  snapshots = [...snapshots];
  emit();
}

export function previewUrl(id: string): string | null {
  return previews.get(id) ?? null;
}

export function startUploads(files: Iterable<File>): string[] {
  const ids: string[] = [];
  for (const file of files) {
    const id = getEngine().start(file);
    addPreview(id, file);
    ids.push(id);
  }
  return ids;
}

export async function resumeUpload(file: File, upload: UploadView): Promise<string> {
  const id = await getEngine().resumeWith(file, upload);
  addPreview(id, file);
  return id;
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function getSnapshots(): readonly UploadSnapshot[] {
  return snapshots;
}

/** Every upload in the queue; re-renders on each engine change. */
export function useUploads(): readonly UploadSnapshot[] {
  // Touch the engine so a page that only reads the queue still creates it.
  getEngine();
  return useSyncExternalStore(subscribe, getSnapshots);
}

// Leaving the page: stop timers, workers and requests cleanly.
if (typeof window !== "undefined") {
  window.addEventListener("pagehide", () => {
    detach?.();
    engine?.dispose();
    engine = null;
    detach = null;
    // If the page comes back from the back/forward cache, it starts with an empty queue.
    setSnapshots([]);
  });
}
