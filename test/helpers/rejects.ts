// Asserts how the library refuses bad input: with its own error (VimedgeError), the expected code and a
// one-line message that says what was wrong. Each helper takes a call, synchronous or returning a promise,
// or a promise itself (which must then reject, not throw when made); with a promise it returns one to await.
import * as assert from 'uvu/assert';
import { VimedgeError, type ErrorCode } from '../../src/errors.js';

/** What is checked: a call, or a promise already made. */
type Run = (() => unknown) | Promise<unknown>;
type AsyncRun = (() => Promise<unknown>) | Promise<unknown>;

/** Calls `run`, then `onReturn` or `onThrow`: at once, or once the promise settles. */
function settle<T>(run: Run, onReturn: () => T, onThrow: (e: unknown) => T): T | Promise<T> {
  let result: unknown = run;
  if (typeof run === 'function') {
    try {
      result = run();
    } catch (e) {
      return onThrow(e);
    }
  }
  return result instanceof Promise ? result.then(onReturn, onThrow) : onReturn();
}

/** Text the message must contain (a string) or match (a pattern). */
type Expected = string | RegExp;

function refusedAs(e: unknown, code: ErrorCode, expected: Expected[]): VimedgeError {
  if (!(e instanceof VimedgeError)) throw e;
  assert.is(e.code, code, e.message);
  assert.not.match(e.message, /\n/, 'a VimedgeError message is one line');
  for (const x of expected) {
    assert.ok(typeof x === 'string' ? e.message.includes(x) : x.test(e.message), `"${e.message}" does not mention ${x}`);
  }
  return e;
}

/**
 * Asserts that `run` throws (or rejects with) the project's own error with this code, its message containing
 * every string and matching every pattern. Returns the error.
 */
export function rejects(run: AsyncRun, code: ErrorCode, ...expected: Expected[]): Promise<VimedgeError>;
export function rejects(run: () => unknown, code: ErrorCode, ...expected: Expected[]): VimedgeError;
export function rejects(run: Run, code: ErrorCode, ...expected: Expected[]): VimedgeError | Promise<VimedgeError> {
  return settle(run,
    () => assert.unreachable(`accepted; expected VimedgeError ${code} ${expected.join(' ')}`) as never,
    (e) => refusedAs(e, code, expected));
}

/** Asserts that `run` succeeds or throws (rejects with) a VimedgeError: what corruption loops ask of every input. */
export function onlyVimedgeErrors(run: AsyncRun, label: string): Promise<void>;
export function onlyVimedgeErrors(run: () => unknown, label: string): void;
export function onlyVimedgeErrors(run: Run, label: string): void | Promise<void> {
  return settle(run, () => {}, (e) => {
    if (!(e instanceof VimedgeError)) assert.unreachable(`${label}: ${(e as Error)?.stack ?? e}`);
  });
}
