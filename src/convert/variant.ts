/**
 * The variant flags a checkpoint's shapes cannot reveal (docs/MODEL.md §1 "What a checkpoint tells", §2.5):
 * where the class token sits, and whether the two scan directions are halved (`if_devide_out`). A head-token
 * or a summed-directions model has exactly the shapes of the released middle-token, halved one, and the
 * runtime runs only the latter; so the variant is taken from the convert options, else from the training
 * script's registered model name when the checkpoint keeps its args, else assumed, and always recorded with
 * its basis. A variant the runtime cannot run is refused by name instead of being run as another model.
 */
import { fail } from '../errors.js';
import type { ModelSource, ModelVariant } from '../model/contract.js';

export const CLASS_TOKEN_POSITIONS = ['middle', 'head', 'none'] as const;
export const DIRECTION_MERGES = ['halved', 'summed'] as const;

/** The variant of every released Vim classifier, the only one the kernels' forward pass implements. */
const RUNTIME_VARIANT: ModelVariant = { classToken: 'middle', directions: 'halved' };

const DESCRIBE: { [F in keyof ModelVariant]: Record<ModelVariant[F], string> } = {
  classToken: { middle: 'class token in the middle', head: 'class token at the head', none: 'no class token (mean pooling)' },
  directions: { halved: 'directions halved', summed: 'directions summed (if_devide_out=False)' },
};

/**
 * What a Vim registered name says (`..._with_midclstok_div2`): `midclstok` a middle class token, `div2` halved
 * directions. Names without these markers say nothing, and nothing is read from them.
 */
function variantFromName(name: string | undefined): Partial<ModelVariant> {
  if (name === undefined) return {};
  const told: Partial<ModelVariant> = {};
  if (/midclstok/.test(name)) told.classToken = 'middle';
  else if (/cls_?tok/.test(name)) told.classToken = 'head';
  if (/div2/.test(name)) told.directions = 'halved';
  return told;
}

export function describeVariant(v: ModelVariant): string {
  return `${DESCRIBE.classToken[v.classToken]}, ${DESCRIBE.directions[v.directions]}`;
}

/** The variant to record: asserted by options, read from `trainedAs`, or assumed; refused unless runnable. */
export function resolveVariant(asserted: Partial<ModelVariant>, trainedAs: string | undefined): NonNullable<ModelSource['variant']> {
  const named = variantFromName(trainedAs);
  const bases: Record<keyof ModelVariant, string> = { classToken: '', directions: '' };
  const pick = <F extends keyof ModelVariant>(flag: F): ModelVariant[F] => {
    const option = asserted[flag];
    const fromName = named[flag] as ModelVariant[F] | undefined;
    if (option !== undefined && fromName !== undefined && option !== fromName) {
      fail('BAD_ARGUMENT', `the convert options say ${DESCRIBE[flag][option]}, the checkpoint's training args `
        + `(model '${trainedAs}') say ${DESCRIBE[flag][fromName]}`);
    }
    bases[flag] = option !== undefined ? 'convert options'
      : fromName !== undefined ? `training args: model '${trainedAs}'`
        : 'assumed: the checkpoint does not say, and every released Vim model is so';
    return option ?? fromName ?? RUNTIME_VARIANT[flag];
  };
  const variant: ModelVariant = { classToken: pick('classToken'), directions: pick('directions') };
  const basis = bases.classToken === bases.directions ? bases.classToken
    : `class token: ${bases.classToken}; directions: ${bases.directions}`;
  if (variant.classToken !== RUNTIME_VARIANT.classToken || variant.directions !== RUNTIME_VARIANT.directions) {
    fail('BAD_MODEL', `the checkpoint is a ${describeVariant(variant)} model (${basis}); the runtime runs only `
      + `the released variant, ${describeVariant(RUNTIME_VARIANT)} (docs/MODEL.md §1)`);
  }
  return { ...variant, basis };
}
