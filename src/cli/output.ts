/** Writes a file so that an interrupted run never leaves a partial one: temporary name, then rename. */
import { writeFile, rename, rm } from 'node:fs/promises';

export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${file}.partial-${process.pid}`;
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, file);
  } catch (e) {
    await rm(temporary, { force: true });
    throw e;
  }
}
