// Copies Swagger UI's files into the build, so the server's interactive API docs (/api/docs)
// work without reaching a CDN (self-hosted installs are often offline or on a closed LAN).
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const source = dirname(require.resolve("swagger-ui-dist/package.json"));
const target = join("dist", "vendor", "swagger-ui");
mkdirSync(target, { recursive: true });
for (const name of ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"]) {
  copyFileSync(join(source, name), join(target, name));
}
