// Preloaded with `--import`: appends every module URL the process resolves to the file $TRACE_IMPORTS, so
// a test can see what a CLI start loaded. The same file serves as its own resolve hook (in the hooks thread).
import { register } from 'node:module';
import { appendFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.TRACE_IMPORTS, `${result.url}\n`);
  return result;
}

if (isMainThread) register(import.meta.url);
