#!/usr/bin/env node
/**
 * `vimedge`: one file a verb; this file wires them up and turns errors into one clear line. A verb's file
 * imports at the top only what its options need (commander, ./args, names); what the verb runs (sharp, the
 * model, vega, the quantizer: seconds to load) is imported in its action, so that `--help` or one verb does
 * not load every verb's dependencies (test/cli.test.ts checks).
 */
import { Command, CommanderError } from 'commander';
import { printable, VimedgeError } from '../errors.js';
import { classifyCommand } from './classify.js';
import { convertCommand } from './convert.js';
import { inspectCommand } from './inspect.js';
import { benchCommand } from './bench.js';
import { evalCommand } from './eval.js';
import { quantizeCommand } from './quantize.js';
import { outliersCommand } from './outliers.js';
import { EXIT } from './exit-codes.js';

// A reader that stops early (`vimedge classify folder | head`) closes stdout: that ends the run quietly,
// as for any Unix filter, instead of an unhandled EPIPE.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command('vimedge')
  .description('Vision Mamba image classifiers in WebAssembly')
  .version('0.1.0')
  .exitOverride();
program.addCommand(classifyCommand());
program.addCommand(convertCommand());
program.addCommand(inspectCommand());
program.addCommand(benchCommand());
program.addCommand(evalCommand());
program.addCommand(quantizeCommand());
program.addCommand(outliersCommand());
// addCommand does not pass exitOverride on: without it a verb's usage error would exit 1 inside commander.
for (const verb of program.commands) verb.exitOverride();

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // commander has printed its message; --help and --version end with 0, every other of its errors is misuse.
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : EXIT.usage);
  if (e instanceof VimedgeError) {
    console.error(`vimedge: ${e.message}`);
    process.exit(EXIT.badInput);
  }
  // A bug, not bad input: still one line, with its own status; VIMEDGE_DEBUG=1 prints where it happened.
  if (process.env.VIMEDGE_DEBUG) throw e;
  console.error(`vimedge: internal error: ${printable(e instanceof Error ? e.message : String(e))} (VIMEDGE_DEBUG=1 shows the stack)`);
  process.exit(EXIT.internal);
}
