# workerd configuration of the edge example: `npx workerd serve config.capnp` in a folder holding worker.js,
# model.vimq and the contents of dist/worker/ (vimedge.js + three .wasm files), or run it from this
# folder after `npm run build` as laid out below. Listens on 127.0.0.1:8080 unless overridden with
# --socket-addr http=HOST:PORT.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "classify", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:8080", http = (), service = "classify") ],
);

const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "vimedge.js", esModule = embed "../../dist/worker/vimedge.js"),
    # `import x from './x.wasm'` in vimedge.js: compiled WebAssembly modules.
    (name = "vimedge.wasm", wasm = embed "../../dist/worker/vimedge.wasm"),
    (name = "mozjpeg_dec.wasm", wasm = embed "../../dist/worker/mozjpeg_dec.wasm"),
    (name = "webp_dec.wasm", wasm = embed "../../dist/worker/webp_dec.wasm"),
    # The model, bundled: `import model from './model.vimq'` is its bytes (an ArrayBuffer).
    (name = "model.vimq", data = embed "model.vimq"),
  ],
  compatibilityDate = "2025-01-01",
);
