// One upload with tus-js-client, timed: node tus-client.mjs ENDPOINT FILE PARALLEL [TOKEN]
// Prints {"seconds": s, "url": u, "cpu_seconds": c}: from start() to onSuccess (the last PATCH answered).
import { readFileSync } from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, path, parallel, token] = process.argv.slice(2);
const data = readFileSync(path);
const cpuBefore = process.cpuUsage();
const started = performance.now();
const upload = new tus.Upload(data, {
  endpoint,
  headers: token ? { Authorization: `Bearer ${token}` } : {},
  metadata: { filename: "bench.bin", filetype: "application/octet-stream" },
  parallelUploads: Number(parallel),
  chunkSize: Infinity,
  retryDelays: [],
  storeFingerprintForResuming: false,
  onError(error) {
    console.log(JSON.stringify({ error: String(error) }));
    process.exit(1);
  },
  onSuccess() {
    const cpu = process.cpuUsage(cpuBefore);
    const seconds = (performance.now() - started) / 1000;
    console.log(JSON.stringify({ seconds, url: upload.url, cpu_seconds: (cpu.user + cpu.system) / 1e6 }));
  },
});
upload.start();
