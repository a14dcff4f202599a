// "/upload": add files, watch the queue, and resume unfinished uploads.

import { DropZone } from "../components/DropZone";
import { ResumeSection } from "../components/ResumeSection";
import { UploadQueue } from "../components/UploadQueue";
import { useAnnounce } from "../state/announcer";
import { startUploads, useUploads } from "../state/uploads";

export function UploadPage() {
  const uploads = useUploads();
  const announce = useAnnounce();

  const add = (files: File[]) => {
    startUploads(files);
    announce(files.length === 1 ? `Added ${files[0]!.name}` : `Added ${files.length} files`);
  };

  return (
    <div>
      <title>Upload – LFUSYS</title>
      <h1 className="text-2xl font-bold tracking-tight">Upload</h1>
      <p className="mt-1 mb-6 text-slate-600 dark:text-slate-400">
        Add files of any size. You can pause, leave this page, or close the browser and resume later.
      </p>
      <DropZone
        onFiles={add}
        onSkipped={(count) =>
          announce(
            count === 1
              ? "A folder was skipped: drop the files inside it instead."
              : `${count} folders were skipped: drop the files inside them instead.`,
            "assertive",
          )
        }
      />
      <UploadQueue uploads={uploads} />
      <ResumeSection uploads={uploads} />
    </div>
  );
}
