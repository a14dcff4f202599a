// Downloads go through a short-lived signed URL; the server names the file (Content-Disposition).

import { downloadLink } from "../api/client";

export async function downloadFile(fileId: string): Promise<string> {
  const link = await downloadLink(fileId);
  const url = new URL(link.url, window.location.href);
  const anchor = document.createElement("a");
  anchor.href = url.href;
  anchor.rel = "noopener";
  if (url.origin === window.location.origin) {
    // A temporary <a download> starts the download without leaving the app (and without a pop-up).
    anchor.download = link.file_name;
  } else {
    // Another origin (an S3 presigned URL) ignores `download`: open it in a new tab, which the
    // browser closes once the attachment starts, so a failure there never replaces this page
    // and its running uploads.
    anchor.target = "_blank";
  }
  anchor.style.display = "none";
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  return link.file_name;
}
