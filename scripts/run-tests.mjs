// Runs every uvu suite under test/ (TypeScript through tsx) and closes with the line CI reads:
// "N passed, N failed". uvu prints Total/Passed/Skipped but no such line.
import { spawn } from 'node:child_process';

const pattern = process.argv[2] ?? '.*\\.test\\.ts$';
const child = spawn(process.execPath, ['--import', 'tsx', 'node_modules/uvu/bin.js', 'test', pattern],
  { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (chunk) => { process.stdout.write(chunk); out += chunk; });
child.on('close', (code) => {
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1]);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1]);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  if (!Number.isFinite(total) || !Number.isFinite(passed)) {
    console.log('0 passed, 1 failed');
    process.exit(code || 1);
  }
  const failed = total - passed - skipped;
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(failed > 0 ? 1 : code ?? 1);
});
