/**
 * The ImageFolder convention (torchvision): one sub-folder per class, classes indexed in sorted name order,
 * images decoded with the Node host's decoder.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { decodeImageFile } from '../hosts/node-decode.js';
import type { LabelledImages } from './labelled-images.js';
import { fail } from '../errors.js';

export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.bmp', '.tif', '.tiff', '.avif']);

export function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(file).toLowerCase());
}

/**
 * The image files anywhere below `folder`, by extension, as sorted paths. Links to folders are not followed
 * (one `..` link would count images twice, two would make the walk exponential), and FIFOs, devices, sockets
 * and links to them are skipped (reading one blocks or never ends). A link to an image is read; a dangling
 * one fails when it is read, like a missing file. A sub-folder that cannot be read fails the listing: a
 * class silently missing would make an accuracy wrong.
 */
export async function listImages(folder: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) =>
      fail('BAD_DATASET', `${dir}: cannot list this folder (${e.code ?? e.message})`));
    for (const entry of entries) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(file);
      else if (isImageFile(entry.name) && (entry.isFile() || (entry.isSymbolicLink() && await isFileOrDangling(file)))) files.push(file);
    }
  };
  await walk(folder);
  return files.sort();
}

/** A link's target is a regular file, or missing (reported when read); not a folder or a special file. */
async function isFileOrDangling(link: string): Promise<boolean> {
  const target = await stat(link).catch(() => undefined);
  return target === undefined || target.isFile();
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
