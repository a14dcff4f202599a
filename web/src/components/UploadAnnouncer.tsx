// Speaks upload state changes ("photo.jpg: Completed") in the live region, on every page.
// A failure may mean the sign-in ended (the engine refreshes on its own and cannot tell the app),
// so each failure also asks the server who is signed in; a refused refresh then signs the app out.

import { useEffect, useRef } from "react";
import { me } from "../api/client";
import type { UploadState } from "../engine";
import { useAnnounce } from "../state/announcer";
import { useUploads } from "../state/uploads";
import { stateLabel } from "../lib/uploadState";

export function UploadAnnouncer() {
  const uploads = useUploads();
  const announce = useAnnounce();
  const previous = useRef(new Map<string, UploadState>());

  useEffect(() => {
    const seen = new Map<string, UploadState>();
    let failed = false;
    for (const upload of uploads) {
      seen.set(upload.id, upload.state);
      const before = previous.current.get(upload.id);
      if (before === upload.state) continue;
      if (upload.state === "failed") failed = true;
      // A failure, or a pause the user did not ask for (it carries a reason), must be heard at once.
      const urgent = upload.state === "failed" || upload.error !== null;
      announce(`${upload.fileName}: ${stateLabel(upload)}`, urgent ? "assertive" : "polite");
    }
    previous.current = seen;
    // The client reports a refused refresh to the auth state itself; other outcomes need nothing.
    if (failed) me().catch(() => undefined);
  }, [uploads, announce]);

  return null;
}
