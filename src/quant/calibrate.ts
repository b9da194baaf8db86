/**
 * One calibration pass: every calibration image through the fp32 runtime, the input of each requested
 * Linear (an Observer's linearInput) streamed into its SiteStats. A progress bar goes to stderr when it is
 * a terminal.
 */
import { SingleBar, Presets } from 'cli-progress';
import type { Observer, VimModel } from '../model/vim-model.js';
import { SiteStats, type StatsNeeds } from './site-stats.js';
import type { CalibrationImages } from './calibration-source.js';
import { seededRandom } from './random.js';

/** Statistics per site (Linear name, e.g. `layers.3.mixer.out_proj`). */
export type Calibration = Map<string, SiteStats>;

export interface PassOptions {
  seed: number;
  /** Progress bar label; no bar when stderr is not a terminal. */
  label: string;
}

export async function calibrate(model: VimModel, images: CalibrationImages,
                                needs: (site: string) => StatsNeeds | undefined, options: PassOptions): Promise<Calibration> {
  const stats: Calibration = new Map();
  const random = seededRandom(options.seed);
  const tokens = model.config.numTokens;
  const observer: Observer = {
    linearInput(site, values) {
      let s = stats.get(site.name);
      if (!s) {
        const wanted = needs(site.name);
        if (!wanted) return;
        s = new SiteStats(tokens, site.k, wanted, random);
        stats.set(site.name, s);
      }
      s.add(values);
    },
  };
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: `${options.label} [{bar}] {value}/{total} images, {eta}s left`, stream: process.stderr },
      Presets.shades_classic)
    : undefined;
  bar?.start(images.count, 0);
  for (let i = 0; i < images.count; i++) {
    model.forward(await images.input(i), observer);
    bar?.increment();
  }
  bar?.stop();
  return stats;
}
