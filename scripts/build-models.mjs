// Builds the shipped fp32 model file from the committed checkpoint (part of `npm run build`).
// Only the checkpoint is committed: the .vimq holds the same weights again, and both together would take
// 55 MB of the repository. Conversion is deterministic, so every clone builds the same bytes.
import { existsSync, statSync, readFileSync } from 'node:fs';
import { convertCheckpoint } from '../dist/src/convert/checkpoint.js';
import { readLabels } from '../dist/src/model/labels.js';
import { writeFileAtomic } from '../dist/src/cli/output.js';

const checkpoint = 'models/vim_fmnist.pth';
const output = 'models/vim-fmnist.vimq';
const labelsFile = 'models/fashion-mnist-labels.txt';
// Training-set pixel statistics printed by training/train.py (training/logs/test_eval.json).
const preprocess = { resize: 28, crop: 28, interpolation: 'bicubic', mean: [0.2860405969887955], std: [0.35302424451492254] };

const fresh = existsSync(output) && statSync(output).mtimeMs >= statSync(checkpoint).mtimeMs;
if (!fresh) {
  const labels = readLabels(readFileSync(labelsFile), labelsFile);
  const bytes = await convertCheckpoint(new Uint8Array(readFileSync(checkpoint)), checkpoint, { labels, preprocess });
  await writeFileAtomic(output, bytes);
  console.error(`built ${output} (${(bytes.length / 1e6).toFixed(1)} MB) from ${checkpoint}`);
}
