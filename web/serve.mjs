// Serves web/dist on 127.0.0.1 with COOP/COEP (cross-origin isolation: SharedArrayBuffer, so the
// wasm backend can use several threads). `--no-isolation` leaves the headers out; `--port N`.
// Tests import startServer() to serve any folder either way.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIST } from './build.mjs';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.gz': 'application/gzip',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.safetensors': 'application/octet-stream',
  '.npy': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
};

/** Start a static server on 127.0.0.1 (port 0: any free port). Resolves to { url, close }. */
export function startServer({ dir = DIST, port = 0, isolation = true, extra = {} } = {}) {
  const root = normalize(dir + sep);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    let file = normalize(join(root, path));
    if (!file.startsWith(root)) return void res.writeHead(403).end('forbidden');
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      statSync(file);
    } catch {
      return void res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
    }
    const headers = { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache', ...extra };
    if (isolation) Object.assign(headers, { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
    res.writeHead(200, headers);
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address();
      resolve({
        url: `http://127.0.0.1:${p}/`,
        // closeAllConnections: a browser keeps its keep-alive sockets open for minutes, and close()
        // alone waits for them (measured: ~100 s per page in the browser tests).
        close: () =>
          new Promise((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--port');
  const port = i >= 0 ? Number(args[i + 1]) : 8080;
  const isolation = !args.includes('--no-isolation');
  const { url } = await startServer({ port, isolation });
  console.log(`resnet-ts web app: ${url} (${isolation ? 'cross-origin isolated: threads on' : 'no COOP/COEP: 1 thread'}; Ctrl-C stops)`);
}
