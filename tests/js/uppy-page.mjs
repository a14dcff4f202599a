// The browser side of tests/e2e/test_uppy.py, bundled there by esbuild into one script for a page on
// LFUSYS's own origin: Uppy with its Tus plugin, as a site embeds it, uploading to /api/v1/tus/ with the
// signed-in browser's cookies and the CSRF header that cookie sign-in needs on every write.
//
//   await window.uploadWithUppy(file, tusOptions)
//     -> {successful: [{name, size, uploadURL}], failed: [{name, error}]}
import Uppy from "@uppy/core";
import Tus from "@uppy/tus";

// As web/src/api/csrf.ts reads it: the server hands the token out in a readable cookie.
const CSRF_COOKIES = ["__Host-lfusys_csrf", "lfusys_csrf"];

function csrfToken() {
  for (const pair of document.cookie.split(";")) {
    const [name, ...value] = pair.trim().split("=");
    if (CSRF_COOKIES.includes(name)) return decodeURIComponent(value.join("="));
  }
  throw new Error("no CSRF cookie: sign in (or GET /api/v1/auth/me) first");
}

window.uploadWithUppy = async function uploadWithUppy(file, tusOptions = {}) {
  const uppy = new Uppy().use(Tus, {
    endpoint: new URL("/api/v1/tus/", window.location.origin).href,
    headers: { "X-CSRF-Token": csrfToken() },
    ...tusOptions,
  });
  try {
    uppy.addFile({ name: file.name, type: file.type, data: file, source: "test" });
    const result = await uppy.upload();
    return {
      successful: (result?.successful ?? []).map((f) => ({ name: f.name, size: f.size, uploadURL: f.uploadURL })),
      failed: (result?.failed ?? []).map((f) => ({ name: f.name, error: String(f.error) })),
    };
  } finally {
    uppy.destroy();
  }
};
