// Asserts that a call throws the project's own error with the given code and message fragments.
import * as assert from 'uvu/assert';
import { VimedgeError, type ErrorCode } from '../../src/errors.js';

export function rejects(run: () => unknown, code: ErrorCode, ...fragments: string[]): VimedgeError {
  try {
    run();
  } catch (e) {
    if (!(e instanceof VimedgeError)) throw e;
    assert.is(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" does not mention ${f}`);
    return e;
  }
  return assert.unreachable(`expected VimedgeError ${code}`) as never;
}

/** Asserts that an async call rejects with the project's own error, its message matching the pattern. */
export async function rejectsWith(run: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await run();
  } catch (e) {
    assert.instance(e, VimedgeError);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`accepted; expected ${pattern}`);
}
