// `import m from './x.wasm'` in Worker runtimes and their bundlers: a compiled module (src/hosts/worker.ts).
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
