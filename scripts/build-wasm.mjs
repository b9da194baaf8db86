// The kernels, compiled four times (asconfig.json targets): plain or shared memory (threads), each with
// portable SIMD or relaxed SIMD. Hosts pick at load time (src/hosts/node-wasm.ts).
import { execFileSync } from 'node:child_process';

for (const target of ['release', 'release-relaxed', 'threads', 'threads-relaxed']) {
  execFileSync(process.execPath, ['node_modules/assemblyscript/bin/asc.js', '--config', 'asconfig.json', '--target', target], { stdio: 'inherit' });
}
