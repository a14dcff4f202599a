// Where files enter: drag and drop, or the "Choose files" button (keyboard and touch friendly).

import { useEffect, useRef, useState, type DragEvent } from "react";
import { buttonClass } from "../lib/styles";
import { UploadIcon } from "./icons";

interface DropZoneProps {
  onFiles(files: File[]): void;
  /** Told when a drop held folders, which cannot be uploaded as such. */
  onSkipped?(count: number): void;
}

function filesFromDrop(data: DataTransfer): { files: File[]; skipped: number } {
  const files: File[] = [];
  let skipped = 0;
  if (data.items && data.items.length) {
    for (const item of Array.from(data.items)) {
      if (item.kind !== "file") continue;
      // A dropped folder shows up as a zero-byte "file"; the entry API tells them apart.
      const entry = item.webkitGetAsEntry?.();
      if (entry?.isDirectory) {
        skipped += 1;
        continue;
      }
      const file = item.getAsFile();
      if (file) files.push(file);
    }
    return { files, skipped };
  }
  return { files: Array.from(data.files), skipped };
}

export function DropZone({ onFiles, onSkipped }: DropZoneProps) {
  const inputRef = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);
  // dragenter/dragleave fire for every child element; count them to know when the pointer really left.
  const depth = useRef(0);

  // A file dropped just outside the zone must not make the browser navigate away from running uploads.
  useEffect(() => {
    const stop = (event: globalThis.DragEvent) => {
      if (event.dataTransfer?.types.includes("Files")) event.preventDefault();
    };
    window.addEventListener("dragover", stop);
    window.addEventListener("drop", stop);
    return () => {
      window.removeEventListener("dragover", stop);
      window.removeEventListener("drop", stop);
    };
  }, []);

  const hasFiles = (event: DragEvent) => event.dataTransfer.types.includes("Files");

  return (
    <section
      aria-labelledby="drop-zone-title"
      data-testid="drop-zone"
      data-dragging={dragging || undefined}
      onDragEnter={(event) => {
        if (!hasFiles(event)) return;
        event.preventDefault();
        depth.current += 1;
        setDragging(true);
      }}
      onDragOver={(event) => {
        if (!hasFiles(event)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
      }}
      onDragLeave={() => {
        depth.current = Math.max(0, depth.current - 1);
        if (depth.current === 0) setDragging(false);
      }}
      onDrop={(event) => {
        event.preventDefault();
        depth.current = 0;
        setDragging(false);
        const { files, skipped } = filesFromDrop(event.dataTransfer);
        if (skipped) onSkipped?.(skipped);
        if (files.length) onFiles(files);
      }}
      className={
        "flex flex-col items-center rounded-2xl border-2 border-dashed px-6 py-10 text-center transition-colors " +
        (dragging
          ? "border-sky-600 bg-sky-50 dark:border-sky-400 dark:bg-sky-950/40"
          : "border-slate-300 bg-white dark:border-slate-700 dark:bg-slate-900")
      }
    >
      <span className="flex size-12 items-center justify-center rounded-full bg-sky-100 text-sky-800 dark:bg-sky-950 dark:text-sky-300">
        <UploadIcon className="size-6" />
      </span>
      <h2 id="drop-zone-title" className="mt-4 text-lg font-semibold">
        {dragging ? "Drop to upload" : "Drag files here"}
      </h2>
      <p className="mt-1 text-sm text-slate-600 dark:text-slate-400">or</p>
      <button
        type="button"
        onClick={() => inputRef.current?.click()}
        className={buttonClass("primary", "md", "mt-2")}
      >
        Choose files
      </button>
      <p className="mt-4 max-w-md text-sm text-slate-600 dark:text-slate-400">
        Any size. Files travel in checked chunks, several at a time, and can be paused and resumed later,
        even from another device.
      </p>
      <input
        ref={inputRef}
        type="file"
        multiple
        hidden
        aria-label="Files to upload"
        data-testid="file-input"
        onChange={(event) => {
          const files = Array.from(event.target.files ?? []);
          // Clear it so picking the same file again still fires "change".
          event.target.value = "";
          if (files.length) onFiles(files);
        }}
      />
    </section>
  );
}
