// A tiny static server for the example (and its test): serves the repository root with the cross-origin
// isolation headers (COOP/COEP), so SharedArrayBuffer and wasm threads are available to the page, and a strict
// Content-Security-Policy (script-src 'self' 'wasm-unsafe-eval'), under which the page and its worker must run.
//   node examples/browser/serve.mjs [port] [model.vimq]  ->  http://127.0.0.1:8000/examples/browser/
// A model given on the command line is served at /model.vimq and the page is pointed at it.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.vimq': 'application/octet-stream',
};

/** Starts the server on 127.0.0.1; `files` maps extra URL paths to files (e.g. '/model.vimq'). */
export function serve({ port = 0, root = ROOT, files = {} } = {}) {
  const server = createServer(async (req, res) => {
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
      // A strict policy: scripts only from this origin, WebAssembly compiled without allowing eval.
      'Content-Security-Policy': "script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; object-src 'none'",
    };
    try {
      const { pathname } = new URL(req.url ?? '/', 'http://localhost');
      let file = files[pathname] ?? path.join(root, decodeURIComponent(pathname));
      if (!files[pathname] && !path.resolve(file).startsWith(root + path.sep)) throw Object.assign(new Error('outside'), { code: 'ENOENT' });
      if ((await stat(file)).isDirectory()) file = path.join(file, 'index.html');
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [port = '8000', model] = process.argv.slice(2);
  const server = await serve({ port: Number(port), files: model ? { '/model.vimq': path.resolve(model) } : {} });
  const { port: actual } = server.address();
  console.log(`http://127.0.0.1:${actual}/examples/browser/${model ? '?model=/model.vimq' : ''}`);
}
