/**
 * The quantization methods (QUANT-METHODS.md §4–§9): which statistics of the fp model each needs,
 * which function-preserving transforms it applies, and how it sets activation ranges. Weight and
 * activation quantizers themselves are shared (quantize-model.ts).
 */
import type { VimConfig } from '../model/config.js';
import { DIRECTIONS, METHOD_NAMES, mixerPrefix, type MethodName } from '../model/contract.js';
import type { FloatModel } from '../convert/float-model.js';
import type { Calibration } from './calibrate.js';
import type { StatsNeeds } from './site-stats.js';
import { randomSigns, rotationMatrix } from './hadamard.js';
import type { Random } from './random.js';
import { foldNorms } from './transforms/fold-norms.js';
import { smoothQuant } from './transforms/smoothquant.js';
import { OSPLUS_TOKENS, osPlus, shiftDt } from './transforms/osplus.js';
import { kltRotation, rotateDt, rotateOutInput, rotateResidual } from './transforms/rotations.js';
import { smoothFusedGate } from './transforms/smooth-fused.js';
import { fail } from '../errors.js';

export type ActivationRange = 'minmax' | 'percentile' | 'mse';

export interface TransformContext {
  random: Random;
  activationBits: number;
}

export interface Method {
  summary: string;
  range: ActivationRange;
  /** For 'percentile': the quantile of the clipping bounds. */
  percentile?: number;
  /** Transforms applied before the statistics pass (they change what the statistics see). */
  prepare?(m: FloatModel): string[];
  /** Statistics the transforms need from the (prepared) fp model, per site; absent: no statistics pass. */
  needs?(site: string, config: VimConfig): StatsNeeds | undefined;
  /** The function-preserving transforms; returns their names in the order applied. */
  transform(m: FloatModel, stats: Calibration | undefined, ctx: TransformContext): string[];
}

const lastBlock = (c: VimConfig) => mixerPrefix(c.depth - 1);

/** R5 on every block and direction: Hadamard with random signs, or KLT-enhanced from the dt input's covariance. */
function rotateAllDt(m: FloatModel, random: Random, stats?: Calibration): void {
  const { depth, dtRank: R } = m.metadata.config;
  for (let i = 0; i < depth; i++) {
    for (const dir of DIRECTIONS) {
      const signs = randomSigns(R, random);
      const cov = stats?.get(`${mixerPrefix(i)}dt_proj${dir}`)?.covariance();
      rotateDt(m, i, dir, cov ? kltRotation(cov, R, signs) : rotationMatrix(R, signs));
    }
  }
}

function rotateAllOutInputs(m: FloatModel, random: Random): void {
  for (let i = 0; i < m.metadata.config.depth; i++) rotateOutInput(m, i, randomSigns(m.metadata.config.innerDim, random));
}

const stats = (s: Calibration | undefined): Calibration => s ?? fail('BAD_ARGUMENT', 'statistics pass missing');

export const METHODS: Record<MethodName, Method> = {
  rtn: {
    summary: 'round to nearest: per-channel weights, min-max activation ranges, no transform',
    range: 'minmax',
    transform: () => [],
  },
  percentile: {
    summary: 'round to nearest with activation ranges clipped at the 99.999th percentile',
    range: 'percentile',
    percentile: 0.99999,
    transform: () => [],
  },
  smoothquant: {
    summary: 'SmoothQuant α = 0.5 at the in_proj (into γ) and dt_proj (into x_proj) inputs',
    range: 'minmax',
    needs: (site) => (/\.(in_proj|dt_proj(_b)?)$/.test(site) ? {} : undefined),
    transform: (m, s) => {
      smoothQuant(m, stats(s), 0.5);
      return ['smoothquant(in_proj, dt_proj; alpha=0.5)'];
    },
  },
  osplus: {
    summary: 'Outlier Suppression+: channel shift and searched scale at the in_proj and dt_proj inputs',
    range: 'minmax',
    needs: (site) => (/\.(in_proj|dt_proj(_b)?)$/.test(site) ? { reservoir: OSPLUS_TOKENS } : undefined),
    transform: (m, s, ctx) => {
      osPlus(m, stats(s), ctx.activationBits);
      return ['osplus(in_proj, dt_proj)'];
    },
  },
  quarot: {
    summary: 'QuaRot: random Hadamard R1 (residual) and R5 (dt), online Hadamard R2 before out_proj',
    range: 'minmax',
    transform: (m, _s, ctx) => {
      foldNorms(m);
      rotateResidual(m, rotationMatrix(m.metadata.config.embedDim, randomSigns(m.metadata.config.embedDim, ctx.random)));
      rotateAllDt(m, ctx.random);
      rotateAllOutInputs(m, ctx.random);
      return ['fold-norms', 'r1-hadamard', 'r5-hadamard', 'r2-online-hadamard'];
    },
  },
  mambaquant: {
    summary: 'MambaQuant: KLT-enhanced R1 and R5, OS+ dt shift, smooth-fused R2 (scaled SiLU + online Hadamard), percentile ranges',
    range: 'percentile',
    percentile: 0.999999,
    prepare: (m) => {
      foldNorms(m);
      return ['fold-norms'];
    },
    needs: (site, c) => {
      if (site === `${lastBlock(c)}in_proj`) return { covariance: true };
      if (/\.dt_proj(_b)?$/.test(site)) return { covariance: true };
      if (site.endsWith('.out_proj')) return {};
      return undefined;
    },
    transform: (m, s, ctx) => {
      const c = m.metadata.config, st = stats(s);
      shiftDt(m, st);
      smoothFusedGate(m, st);
      const cov = st.get(`${lastBlock(c)}in_proj`)!.covariance();
      rotateResidual(m, kltRotation(cov, c.embedDim, randomSigns(c.embedDim, ctx.random)));
      rotateAllOutInputs(m, ctx.random);
      rotateAllDt(m, ctx.random, st);
      return ['dt-shift', 'smooth-fused-s2', 'r1-klt', 'r2-online-hadamard', 'r5-klt'];
    },
  },
};

export function methodByName(name: string): Method {
  if (!(METHOD_NAMES as readonly string[]).includes(name)) {
    fail('BAD_ARGUMENT', `unknown quantization method '${name}' (methods: ${METHOD_NAMES.join(', ')})`);
  }
  return METHODS[name as MethodName];
}
