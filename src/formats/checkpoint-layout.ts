/**
 * Where a checkpoint keeps its weights (docs/MODEL.md §3). Training scripts wrap the state_dict: Vim and DeiT
 * save `{'model', 'model_ema', 'optimizer', 'args', ...}`, timm saves `{'state_dict', 'state_dict_ema',
 * 'epoch', ...}`; DistributedDataParallel prefixes every key with `module.`, torch.compile with `_orig_mod.`.
 * This module picks the chosen weights out of the pickled tree and takes the wrappers' prefixes off the keys.
 */
import { fail } from '../errors.js';
import type { StateDict } from '../tensor.js';
import { describePickleValue, InertObject, TensorRef, type PickleValue } from './pickle.js';

/** The trained weights, or their exponential moving average (timm's ModelEma, kept by the Vim training script). */
export const WEIGHTS_CHOICES = ['model', 'ema'] as const;
export type WeightsChoice = typeof WEIGHTS_CHOICES[number];

/** The dict keys each choice is stored under, in the order they are looked for. */
const WRAPPER_KEYS: Readonly<Record<WeightsChoice, readonly string[]>> = {
  model: ['model', 'state_dict'],
  ema: ['model_ema', 'state_dict_ema'],
};

/** Module wrappers that rename every key; they nest in either order (DDP around a compiled model, or not). */
const WRAPPER_PREFIXES = ['module.', '_orig_mod.'] as const;
const MAX_LISTED_KEYS = 12;

export interface SelectedTensors {
  tensors: Map<string, TensorRef>;
  /** Where they were found, e.g. "checkpoint['model_ema']", or "the top-level dict". */
  location: string;
  /** The training script's `args.model` (a registered model name), when the checkpoint keeps its args. */
  trainedAs?: string;
}

/** The chosen weights in a torch.save object tree: under a wrapper key, or the top-level dict itself. */
export function selectStateDict(root: PickleValue, name: string, weights: WeightsChoice = 'model'): SelectedTensors {
  const bad = (problem: string): never => fail('BAD_CHECKPOINT', `${name}: ${problem}`);
  if (!(root instanceof Map)) bad(`data.pkl holds ${describePickleValue(root)}, not a state_dict`);
  const dict = root as Map<PickleValue, PickleValue>;
  const wrapper = WRAPPER_KEYS[weights].find((key) => dict.get(key) instanceof Map);
  if (wrapper === undefined && weights === 'ema') {
    bad(`no EMA weights (looked for ${WRAPPER_KEYS.ema.join(', ')}); the checkpoint holds ${listKeys(dict)}`);
  }
  const where = wrapper === undefined ? 'state_dict' : `checkpoint['${wrapper}']`;
  const stateDict = (wrapper === undefined ? dict : dict.get(wrapper)) as Map<PickleValue, PickleValue>;
  const tensors = new Map<string, TensorRef>();
  for (const [key, value] of stateDict) {
    if (typeof key !== 'string') bad(`${where} has a key that is ${describePickleValue(key)}, not a string`);
    if (!(value instanceof TensorRef)) {
      const hint = wrapper === undefined
        ? ` (the checkpoint holds ${listKeys(dict)}; weights are read from ${[...WRAPPER_KEYS.model, ...WRAPPER_KEYS.ema].join(', ')} or a dict of tensors)`
        : '';
      bad(`${where}['${key}'] is ${describePickleValue(value)}, not a tensor${hint}`);
    }
    tensors.set(key as string, value as TensorRef);
  }
  return { tensors, location: wrapper === undefined ? 'the top-level dict' : where, trainedAs: trainingModelName(dict) };
}

/** `key (a dict), key (a number), ...`: what a user needs to see to choose, or to tell what the file is. */
function listKeys(dict: Map<PickleValue, PickleValue>): string {
  const items = [...dict].slice(0, MAX_LISTED_KEYS).map(([k, v]) => `${typeof k === 'string' ? k : describePickleValue(k)} (${describePickleValue(v)})`);
  const more = dict.size > MAX_LISTED_KEYS ? `, and ${dict.size - MAX_LISTED_KEYS} more` : '';
  return dict.size === 0 ? 'nothing' : `${items.join(', ')}${more}`;
}

/** `checkpoint['args'].model` of the Vim / DeiT training script: the registered model name it trained. */
function trainingModelName(dict: Map<PickleValue, PickleValue>): string | undefined {
  const args = dict.get('args');
  if (!(args instanceof InertObject) || !(args.state instanceof Map)) return undefined;
  const model = args.state.get('model');
  return typeof model === 'string' ? model : undefined;
}

/** The state_dict with every wrapper prefix that all its keys share taken off, and that prefix ('' if none). */
export function stripWrapperPrefixes(sd: StateDict): { stateDict: StateDict; prefix: string } {
  const keys = [...sd.keys()];
  let prefix = '';
  for (;;) {
    const next = WRAPPER_PREFIXES.find((p) => keys.length > 0 && keys.every((k) => k.startsWith(prefix + p)));
    if (next === undefined) break;
    prefix += next;
  }
  if (prefix === '') return { stateDict: sd, prefix };
  return { stateDict: new Map([...sd].map(([k, t]) => [k.slice(prefix.length), t])), prefix };
}
