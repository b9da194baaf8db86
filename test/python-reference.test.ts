// The Python side's own tests, in `npm test`: training/test_scan.py checks the training model and its fast scans
// (chunked; Triton on a GPU) against the PyTorch reference in tools/vim_reference/, in float64, on the CPU.
// Needs Debian's python3-torch (/usr/bin/python3; plain `python3` may be another install without torch): skipped
// with the reason when it is missing. GPU-only checks skip themselves inside the script and are listed here.
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
if (!hasTorch) console.log(`python-reference: skipped (needs ${PYTHON} with torch: scripts/install-test-deps.sh)`);
const needsTorch = hasTorch ? test : test.skip;

needsTorch('training/test_scan.py: training model and scans agree with the reference', () => {
  const r = spawnSync(PYTHON, ['training/test_scan.py'], { encoding: 'utf8', timeout: 300_000 });
  const log = `${r.stdout}${r.stderr}`;
  for (const line of log.split('\n').filter((l) => / \.\.\. skipped /.test(l))) console.log(`  ${line.trim()}`);
  assert.is(r.status, 0, log);
  const summary = /^(\d+) passed, (\d+) failed/m.exec(r.stdout);
  assert.ok(summary, `no summary line in:\n${log}`);
  assert.is(Number(summary[2]), 0, log);
  assert.ok(Number(summary[1]) >= 10, `only ${summary[1]} tests ran:\n${log}`);
});

test.run();
