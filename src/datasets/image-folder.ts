/**
 * The ImageFolder convention (torchvision): one sub-folder per class, classes indexed in sorted name order,
 * images decoded with the Node host's decoder.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { decodeImageFile } from '../hosts/node-decode.js';
import type { LabelledImages } from './labelled-images.js';
import { fail } from '../errors.js';

export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.bmp', '.tif', '.tiff', '.avif']);

export function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(file).toLowerCase());
}

/**
 * The image files anywhere below `folder`, by extension, as sorted paths. Symbolic links count as files: a
 * link to an image is read, a dangling one fails when it is read, like a missing file.
 */
export async function listImages(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && isImageFile(e.name))
    .map((e) => path.join(e.parentPath ?? folder, e.name))
    .sort();
}

export async function imageFolder(root: string): Promise<LabelledImages> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => fail('BAD_DATASET', `${root}: not a readable folder`));
  const classNames = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  if (classNames.length === 0) fail('BAD_DATASET', `${root}: no class sub-folders (expected ${root}/<class>/<image>)`);
  const items: { file: string; label: number }[] = [];
  for (const [label, name] of classNames.entries()) {
    items.push(...(await listImages(path.join(root, name))).map((file) => ({ file, label })));
  }
  if (items.length === 0) fail('BAD_DATASET', `${root}: no images in its class sub-folders`);
  return {
    name: root,
    count: items.length,
    classNames,
    async get(i) {
      const { file, label } = items[i];
      return { image: await decodeImageFile(file), label, file };
    },
  };
}
