// The relaxed-SIMD build (build/vimedge.relaxed.wasm: gemm_qs4 is gemm_qs4_4x4_rdot8, on
// i32x4.relaxed_dot_i8x16_i7x16_add_s, where the portable build has gemm_qs4_2x4_dot16) must
// give the same floats as the portable build, bit for bit. Node 20's V8 computes that instruction wrongly
// (src/hosts/node-wasm.ts), so the comparison runs under Deno 2 (V8 15), whose relaxed SIMD is correct:
// gemm_qs4 on 7 seeded shapes, then a W4A8 model's scores through the Deno bundle with each wasm.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { calibrationSet, fixtureModel } from './helpers/quant.js';
import { denoBinary, ensureBuilt, ROOT } from './helpers/hosts.js';
import { readKernelWasm, simdFlavor } from '../src/hosts/node-wasm.js';
import { quantizeModel } from '../src/quant/quantize-model.js';

const RELAXED_DOT = [0xfd, 0x93, 0x02];   // i32x4.relaxed_dot_i8x16_i7x16_add_s
const contains = (bytes: Uint8Array, seq: number[]) => bytes.some((_, i) => seq.every((b, j) => bytes[i + j] === b));

test('the relaxed build uses the relaxed dot; the portable build does not', () => {
  assert.ok(contains(readFileSync(path.join(ROOT, 'build/vimedge.relaxed.wasm')), RELAXED_DOT));
  assert.ok(contains(readFileSync(path.join(ROOT, 'build/vimedge.mt.relaxed.wasm')), RELAXED_DOT));
  assert.not.ok(contains(readFileSync(path.join(ROOT, 'build/vimedge.wasm')), RELAXED_DOT));
  assert.not.ok(contains(readFileSync(path.join(ROOT, 'build/vimedge.mt.wasm')), RELAXED_DOT));
});

test('detection: VIMEDGE_SIMD overrides, a bad value is refused by name', async () => {
  const saved = process.env.VIMEDGE_SIMD;
  try {
    process.env.VIMEDGE_SIMD = 'portable';
    assert.is(simdFlavor(), 'portable');
    assert.equal(await readKernelWasm(), new Uint8Array(readFileSync(path.join(ROOT, 'build/vimedge.wasm'))));
    process.env.VIMEDGE_SIMD = 'avx';
    assert.throws(() => simdFlavor(), /VIMEDGE_SIMD must be portable or relaxed, not 'avx'/);
  } finally {
    if (saved === undefined) delete process.env.VIMEDGE_SIMD;
    else process.env.VIMEDGE_SIMD = saved;
  }
});

test('Deno: relaxed gemm_qs4 and a W4A8 model give bit-identical results to the portable build', async () => {
  ensureBuilt();
  const dir = mkdtempSync(path.join(tmpdir(), 'vimedge-relaxed-'));
  try {
    const { file } = await quantizeModel(await fixtureModel(), calibrationSet(16), await readKernelWasm(),
      { method: 'mambaquant', bits: 'w4a8', seed: 0 });
    const model = path.join(dir, 'w4a8.vimq');
    writeFileSync(model, file);
    const r = spawnSync(denoBinary(), ['run', '--allow-read', 'test/helpers/relaxed-check.mjs', ROOT, model], {
      cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_DIR: path.join(dir, 'deno') },
    });
    assert.is(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.is(result.gemmCases, 7);
    assert.is(result.gemmMismatches, 0);
    assert.ok(result.scoresIdentical, 'W4A8 scores differ between the builds');
    assert.match(result.scores, /^\d+:[\d.e-]+,/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
