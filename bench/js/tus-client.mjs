// Upload one file with tus-js-client, timed: node tus-client.mjs ENDPOINT FILE PARALLEL MODE [TOKEN]
// MODE "concat": one tus.Upload with parallelUploads PARALLEL (partial uploads joined by a final one, the
// concatenation extension). MODE "separate": PARALLEL independent tus.Uploads of consecutive slices of the
// file at once (what a server without concatenation allows: PARALLEL uploads, not one file).
// Prints {"seconds": s, "started_at": t, "urls": [...], "cpu_seconds": c} and exits: s from start() until
// every upload's last PATCH (or final POST) is answered, t the Unix time of start() in seconds.
import { readFileSync } from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, path, parallelArg, mode, token] = process.argv.slice(2);
const parallel = Number(parallelArg);
const data = readFileSync(path);

function upload(body, parallelUploads) {
  return new Promise((resolve, reject) => {
    const one = new tus.Upload(body, {
      endpoint,
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      metadata: { filename: "bench.bin", filetype: "application/octet-stream" },
      parallelUploads,
      chunkSize: Infinity,
      retryDelays: [],
      storeFingerprintForResuming: false,
      onError: reject,
      onSuccess: () => resolve(one.url),
    });
    one.start();
  });
}

function slices() {
  const size = Math.floor(data.length / parallel);
  return Array.from({ length: parallel }, (_, i) =>
    data.subarray(i * size, i === parallel - 1 ? data.length : (i + 1) * size),
  );
}

const cpuBefore = process.cpuUsage();
const startedAt = Date.now() / 1000;
const started = performance.now();
const uploads = mode === "separate" ? slices().map((slice) => upload(slice, 1)) : [upload(data, parallel)];
Promise.all(uploads).then(
  (urls) => {
    const cpu = process.cpuUsage(cpuBefore);
    const seconds = (performance.now() - started) / 1000;
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    console.log(JSON.stringify({ seconds, started_at: startedAt, urls, cpu_seconds: cpuSeconds }));
    process.exit(0); // kept-alive connections would hold the process open
  },
  (error) => {
    console.log(JSON.stringify({ error: String(error) }));
    process.exit(1);
  },
);
