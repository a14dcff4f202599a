// Hashes Blobs off the main thread, one at a time: each request is one chunk read into memory,
// so a worker holds at most one chunk however many are queued and however large the file is.

import { sha256Hex } from "./digest";
import type { HashReply, HashRequest } from "./worker-hasher";

async function answer({ id, blob }: HashRequest): Promise<void> {
  let reply: HashReply;
  try {
    reply = { id, sha256: await sha256Hex(blob) };
  } catch (error) {
    const { name, message } = error instanceof Error ? error : { name: "Error", message: String(error) };
    reply = { id, error: message, name };
  }
  postMessage(reply);
}

let queue = Promise.resolve();
addEventListener("message", (event: MessageEvent<HashRequest>) => {
  queue = queue.then(() => answer(event.data));
});
