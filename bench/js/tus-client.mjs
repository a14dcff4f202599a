// One upload with tus-js-client, timed: node tus-client.mjs ENDPOINT FILE PARALLEL [TOKEN]
// Prints {"seconds": s, "started_at": t, "url": u, "cpu_seconds": c} and exits: s from start() to onSuccess
// (the last PATCH answered), t the Unix time of start() in seconds (to clock what follows from there).
import { readFileSync } from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, path, parallel, token] = process.argv.slice(2);
const data = readFileSync(path);
const cpuBefore = process.cpuUsage();
const startedAt = Date.now() / 1000;
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
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    console.log(JSON.stringify({ seconds, started_at: startedAt, url: upload.url, cpu_seconds: cpuSeconds }));
    process.exit(0); // kept-alive connections would hold the process open
  },
});
upload.start();
