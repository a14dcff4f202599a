// @tus/server with @tus/file-store: node tus-node-server.mjs PORT DIRECTORY
// Serves tus 1.0 at /files/ on 127.0.0.1:PORT, storing uploads under DIRECTORY.
import http from "node:http";
import { Server } from "@tus/server";
import { FileStore } from "@tus/file-store";

const [port, directory] = process.argv.slice(2);
const tus = new Server({ path: "/files", datastore: new FileStore({ directory }) });
http
  .createServer((req, res) => {
    if (req.url === "/health") {
      res.writeHead(200, { "content-length": "2" }).end("ok");
      return;
    }
    tus.handle(req, res);
  })
  .listen(Number(port), "127.0.0.1");
