import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/**
 * SHA-256 of a Blob as lower-case hex. Uses Web Crypto where it exists; crypto.subtle is only
 * there in secure contexts (https, localhost), and a LAN address over plain http is not one, so
 * fall back to a JavaScript SHA-256 there.
 */
export async function sha256Hex(
  blob: Blob,
  subtle: SubtleCrypto | null = globalThis.crypto?.subtle ?? null,
): Promise<string> {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (subtle !== null) return bytesToHex(new Uint8Array(await subtle.digest("SHA-256", bytes)));
  return bytesToHex(sha256(bytes));
}
