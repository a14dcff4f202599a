// Upload one file with tus-js-client, as a script would: node tus-upload.mjs ENDPOINT TOKEN FILE [OPTIONS_JSON]
// OPTIONS_JSON: {chunkSize, parallelUploads, uploadLengthDeferred, overridePatchMethod, headers, filename,
// filetype, abortAfterBytes, terminate}.
// Prints one JSON line: {"url": ...} once done, {"aborted": true, "url": ..., "offset": n} after an abort,
// or {"error": ...} (exit status 1).
import { readFileSync } from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, token, path, optionsJson] = process.argv.slice(2);
const options = JSON.parse(optionsJson ?? "{}");
const data = readFileSync(path);

const upload = new tus.Upload(data, {
  endpoint,
  headers: { Authorization: `Bearer ${token}`, ...(options.headers ?? {}) },
  metadata: { filename: options.filename ?? "file.bin", filetype: options.filetype ?? "application/octet-stream" },
  chunkSize: options.chunkSize ?? Infinity,
  parallelUploads: options.parallelUploads ?? 1,
  uploadLengthDeferred: Boolean(options.uploadLengthDeferred),
  overridePatchMethod: Boolean(options.overridePatchMethod),
  retryDelays: [0, 200, 500, 1000],
  storeFingerprintForResuming: false,
  onError(error) {
    console.log(JSON.stringify({ error: String(error) }));
    process.exit(1);
  },
  onProgress(sent) {
    if (options.abortAfterBytes !== undefined && sent >= options.abortAfterBytes && !upload._lfusysAborted) {
      upload._lfusysAborted = true;
      upload.abort(Boolean(options.terminate)).then(() => {
        console.log(JSON.stringify({ aborted: true, url: upload.url }));
      });
    }
  },
  onSuccess() {
    console.log(JSON.stringify({ url: upload.url }));
  },
});
upload.start();
