/**
 * A restricted unpickler for the data.pkl of torch.save archives (pickle protocols 2-5).
 *
 * Written by hand on purpose: a general pickle implementation is a code-execution engine (GLOBAL names any
 * importable function, REDUCE calls it), which is exactly what a downloaded checkpoint must not get. This one
 * knows a fixed allowlist of globals and never executes anything: "calling" an allowlisted global builds an
 * inert JS value (a Map, a TensorRef, an InertObject). Any other global is refused where it is named, as are
 * the opcodes a state_dict never needs (protocol-0 INST/OBJ, the extension registry, out-of-band buffers, ...).
 * Lengths are checked against the bytes left before anything is allocated, and nothing walks the result
 * recursively, so self-referencing or deeply nested values cannot exhaust the JS stack.
 */
import { fail } from '../errors.js';

export type StorageDtype =
  | 'float32' | 'float16' | 'bfloat16' | 'float64'
  | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** A storage named by a persistent id; its bytes are the archive entry data/<key>. */
export class StorageRef {
  constructor(readonly dtype: StorageDtype, readonly key: string, readonly numel: number) {}
}

/** What torch._utils._rebuild_tensor_v2 describes: a strided view (in elements) of a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

/** An instance of an allowlisted plain-data class (argparse.Namespace): class name and pickled state only. */
export class InertObject {
  state: PickleValue = null;
  constructor(readonly className: string) {}
}

/**
 * What an allowlisted global may be used for. Storage classes only tag persistent ids, functions only go
 * through REDUCE, classes only through NEWOBJ; none of them is ever run.
 */
type GlobalRole =
  | { kind: 'storage-type'; dtype: StorageDtype }
  | { kind: 'function'; builds: 'ordered-dict' | 'tensor' | 'parameter' | 'parameter-with-state' }
  | { kind: 'class' };

/** A reference to an allowlisted global, as GLOBAL / STACK_GLOBAL push it. */
export class PickleGlobal {
  constructor(readonly qualifiedName: string, readonly role: GlobalRole) {}
}

/** Python values as this reader represents them. Tuples are frozen arrays, lists are mutable arrays. */
export type PickleValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PickleValue[] | readonly PickleValue[]
  | Map<PickleValue, PickleValue>
  | StorageRef | TensorRef | InertObject | PickleGlobal;

const storageType = (dtype: StorageDtype): GlobalRole => ({ kind: 'storage-type', dtype });

// Integer and bool storages are allowed as tags so that optimizer state or buffers elsewhere in a checkpoint
// (int64 step counters, num_batches_tracked) do not stop the load; they are never decoded (see pth.ts).
const ALLOWED_GLOBALS: ReadonlyMap<string, GlobalRole> = new Map<string, GlobalRole>([
  ['collections.OrderedDict', { kind: 'function', builds: 'ordered-dict' }],
  ['torch._utils._rebuild_tensor_v2', { kind: 'function', builds: 'tensor' }],
  ['torch._utils._rebuild_parameter', { kind: 'function', builds: 'parameter' }],
  ['torch._utils._rebuild_parameter_with_state', { kind: 'function', builds: 'parameter-with-state' }],
  ['argparse.Namespace', { kind: 'class' }],
  ['torch.FloatStorage', storageType('float32')],
  ['torch.HalfStorage', storageType('float16')],
  ['torch.BFloat16Storage', storageType('bfloat16')],
  ['torch.DoubleStorage', storageType('float64')],
  ['torch.LongStorage', storageType('int64')],
  ['torch.IntStorage', storageType('int32')],
  ['torch.ShortStorage', storageType('int16')],
  ['torch.CharStorage', storageType('int8')],
  ['torch.ByteStorage', storageType('uint8')],
  ['torch.BoolStorage', storageType('bool')],
]);

const OP = {
  MARK: 0x28, EMPTY_TUPLE: 0x29, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31,
  BINBYTES: 0x42, SHORT_BINBYTES: 0x43, BINFLOAT: 0x47, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d,
  NONE: 0x4e, BINPERSID: 0x51, REDUCE: 0x52, BINUNICODE: 0x58, EMPTY_LIST: 0x5d,
  APPEND: 0x61, BUILD: 0x62, GLOBAL: 0x63, APPENDS: 0x65, BINGET: 0x68, LONG_BINGET: 0x6a,
  BINPUT: 0x71, LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74, SETITEMS: 0x75, EMPTY_DICT: 0x7d,
  PROTO: 0x80, NEWOBJ: 0x81, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, NEWTRUE: 0x88, NEWFALSE: 0x89,
  LONG1: 0x8a, LONG4: 0x8b, SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e,
  NEWOBJ_EX: 0x92, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95, BYTEARRAY8: 0x96,
} as const;

/** Open MARKs allowed at once; torch.save nests a handful, a hostile stream can open millions. */
export const MAX_MARK_DEPTH = 1000;
/** Python ints wider than this are not weights, shapes or hyperparameters. */
const MAX_LONG_BYTES = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

const hex = (op: number) => `0x${op.toString(16).padStart(2, '0')}`;
const isTuple = (v: PickleValue): v is readonly PickleValue[] => Array.isArray(v) && Object.isFrozen(v);
const isCount = (v: PickleValue): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A short description of a value's type for error messages ("a dict", "global argparse.Namespace"). */
export function describePickleValue(v: PickleValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'a bool';
  if (typeof v === 'number' || typeof v === 'bigint') return 'a number';
  if (typeof v === 'string') return 'a string';
  if (v instanceof Uint8Array) return 'bytes';
  if (isTuple(v)) return 'a tuple';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Map) return 'a dict';
  if (v instanceof StorageRef) return 'a storage';
  if (v instanceof TensorRef) return 'a tensor';
  if (v instanceof InertObject) return `a ${v.className} object`;
  return `global ${v.qualifiedName}`;
}

/**
 * Reads one pickle. `source` names the stream in errors ("model.pth: archive/data.pkl"). Disallowed globals,
 * calls and opcodes throw UNSAFE_PICKLE; malformed streams throw BAD_CHECKPOINT; both give the byte offset.
 */
export function unpickle(bytes: Uint8Array, source: string): PickleValue {
  return new Unpickler(bytes, source).run();
}

class Unpickler {
  private pos = 0;
  private opStart = 0;
  private stack: PickleValue[] = [];
  private readonly marks: PickleValue[][] = [];
  private readonly memo = new Map<number, PickleValue>();
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array, private readonly source: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private malformed(problem: string): never {
    fail('BAD_CHECKPOINT', `${this.source}: byte ${this.opStart}: ${problem}`);
  }

  private unsafe(problem: string): never {
    fail('UNSAFE_PICKLE', `${this.source}: byte ${this.opStart}: ${problem}`);
  }

  run(): PickleValue {
    for (;;) {
      this.opStart = this.pos;
      if (this.pos >= this.bytes.length) this.malformed('stream ends without STOP (truncated)');
      const op = this.bytes[this.pos++];
      if (op === OP.STOP) return this.pop();
      this.step(op);
    }
  }

  private step(op: number): void {
    switch (op) {
      case OP.PROTO: {
        const version = this.u8('PROTO');
        if (version < 2 || version > 5) this.malformed(`pickle protocol ${version} (torch.save writes 2 to 5)`);
        return;
      }
      case OP.FRAME: {
        const length = this.uint64('FRAME'); // framing only groups opcodes; its length must still fit
        if (length > this.bytes.length - this.pos) this.malformed(`FRAME of ${length} bytes exceeds the ${this.bytes.length - this.pos} bytes left`);
        return;
      }
      case OP.MARK:
        if (this.marks.length >= MAX_MARK_DEPTH) this.malformed(`more than ${MAX_MARK_DEPTH} nested MARKs`);
        this.marks.push(this.stack);
        this.stack = [];
        return;
      case OP.POP: this.pop(); return;
      case OP.POP_MARK: this.popMark(); return;

      case OP.NONE: this.push(null); return;
      case OP.NEWTRUE: this.push(true); return;
      case OP.NEWFALSE: this.push(false); return;
      case OP.BININT: this.push(this.int32('BININT')); return;
      case OP.BININT1: this.push(this.u8('BININT1')); return;
      case OP.BININT2: this.push(this.uint16('BININT2')); return;
      case OP.LONG1: this.push(this.long(this.u8('LONG1'))); return;
      case OP.LONG4: this.push(this.long(this.int32('LONG4'))); return;
      case OP.BINFLOAT: this.take(8, 'BINFLOAT'); this.push(this.view.getFloat64(this.pos - 8, false)); return;

      // Lengths are checked by take() against the bytes left before anything is copied or decoded.
      case OP.SHORT_BINUNICODE: this.push(this.text(this.u8('SHORT_BINUNICODE'), 'SHORT_BINUNICODE')); return;
      case OP.BINUNICODE: this.push(this.text(this.uint32('BINUNICODE'), 'BINUNICODE')); return;
      case OP.BINUNICODE8: this.push(this.text(this.uint64('BINUNICODE8'), 'BINUNICODE8')); return;
      case OP.SHORT_BINBYTES: this.push(this.bytesValue(this.u8('SHORT_BINBYTES'), 'SHORT_BINBYTES')); return;
      case OP.BINBYTES: this.push(this.bytesValue(this.uint32('BINBYTES'), 'BINBYTES')); return;
      case OP.BINBYTES8: this.push(this.bytesValue(this.uint64('BINBYTES8'), 'BINBYTES8')); return;
      case OP.BYTEARRAY8: this.push(this.bytesValue(this.uint64('BYTEARRAY8'), 'BYTEARRAY8')); return;

      case OP.EMPTY_TUPLE: this.push(Object.freeze([])); return;
      case OP.TUPLE: this.push(Object.freeze(this.popMark())); return;
      case OP.TUPLE1: case OP.TUPLE2: case OP.TUPLE3: {
        const items = this.popN(op - OP.TUPLE1 + 1);
        this.push(Object.freeze(items));
        return;
      }
      case OP.EMPTY_LIST: this.push([]); return;
      case OP.APPEND: { const item = this.pop(); this.list().push(item); return; }
      case OP.APPENDS: {
        const items = this.popMark();
        const list = this.list();
        for (const item of items) list.push(item); // no spread: millions of items would overflow the call
        return;
      }
      case OP.EMPTY_DICT: this.push(new Map()); return;
      case OP.SETITEM: { const value = this.pop(); const key = this.pop(); this.dict().set(key, value); return; }
      case OP.SETITEMS: {
        const items = this.popMark();
        if (items.length % 2 !== 0) this.malformed('SETITEMS with an odd number of items');
        const dict = this.dict();
        for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
        return;
      }

      case OP.BINPUT: this.put(this.u8('BINPUT')); return;
      case OP.LONG_BINPUT: this.put(this.uint32('LONG_BINPUT')); return;
      case OP.MEMOIZE: this.put(this.memo.size); return;
      case OP.BINGET: this.get(this.u8('BINGET')); return;
      case OP.LONG_BINGET: this.get(this.uint32('LONG_BINGET')); return;

      case OP.GLOBAL: {
        const module = this.line('GLOBAL module');
        const name = this.line('GLOBAL name');
        this.push(this.resolveGlobal(module, name));
        return;
      }
      case OP.STACK_GLOBAL: {
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== 'string' || typeof name !== 'string') {
          this.malformed(`STACK_GLOBAL needs two strings, got ${describePickleValue(module)} and ${describePickleValue(name)}`);
        }
        this.push(this.resolveGlobal(module, name));
        return;
      }
      case OP.REDUCE: { const args = this.pop(); const callee = this.pop(); this.push(this.call(callee, args)); return; }
      case OP.NEWOBJ: { const args = this.pop(); const cls = this.pop(); this.push(this.instantiate(cls, args)); return; }
      case OP.NEWOBJ_EX: {
        this.pop(); // kwargs: Namespace.__new__ ignores them, and instantiate() allows nothing else
        const args = this.pop();
        const cls = this.pop();
        this.push(this.instantiate(cls, args));
        return;
      }
      case OP.BUILD: { const state = this.pop(); this.build(this.top(), state); return; }
      case OP.BINPERSID: this.push(this.storageFromPersistentId(this.pop())); return;

      default: {
        const printable = op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : '';
        this.unsafe(`pickle opcode ${hex(op)}${printable} is not supported`
          + ' (a torch state_dict never needs it)');
      }
    }
  }

  // --- reading the stream -------------------------------------------------------------------------------

  private take(n: number, what: string): Uint8Array {
    const left = this.bytes.length - this.pos;
    if (n > left) this.malformed(`${what} needs ${n} bytes but only ${left} are left (truncated or corrupt)`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private u8(what: string): number {
    return this.take(1, what)[0];
  }

  private uint16(what: string): number {
    this.take(2, what);
    return this.view.getUint16(this.pos - 2, true);
  }

  private int32(what: string): number {
    this.take(4, what);
    return this.view.getInt32(this.pos - 4, true);
  }

  private uint32(what: string): number {
    this.take(4, what);
    return this.view.getUint32(this.pos - 4, true);
  }

  /** Exact below 2^53; anything larger exceeds every file, so take() rejects it as a length anyway. */
  private uint64(what: string): number {
    this.take(8, what);
    return this.view.getUint32(this.pos - 4, true) * 2 ** 32 + this.view.getUint32(this.pos - 8, true);
  }

  /** A copy, so the value neither aliases nor keeps alive the whole file (Buffer.slice would do both). */
  private bytesValue(n: number, what: string): Uint8Array {
    return new Uint8Array(this.take(n, what));
  }

  private text(n: number, what: string): string {
    const raw = this.take(n, what);
    try {
      return utf8.decode(raw);
    } catch {
      return this.malformed(`${what} is not valid UTF-8`);
    }
  }

  private line(what: string): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.malformed(`${what} has no terminating newline (truncated)`);
    const text = this.text(end - this.pos, what);
    this.pos++; // the newline
    return text;
  }

  /** Little-endian two's-complement integer of n bytes (LONG1 / LONG4). */
  private long(n: number): number | bigint {
    if (n < 0) this.malformed(`integer with negative length ${n}`);
    if (n > MAX_LONG_BYTES) this.malformed(`integer of ${n} bytes is too large for a checkpoint`);
    const raw = this.take(n, 'LONG');
    if (n === 0) return 0;
    let digits = '';
    for (let i = n - 1; i >= 0; i--) digits += raw[i].toString(16).padStart(2, '0');
    let value = BigInt(`0x${digits}`);
    if (raw[n - 1] & 0x80) value -= 1n << BigInt(8 * n);
    const small = value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
    return small ? Number(value) : value;
  }

  // --- the stack and the memo ---------------------------------------------------------------------------

  private push(v: PickleValue): void {
    this.stack.push(v);
  }

  private underflow(): never {
    this.malformed(`stack underflow at opcode ${hex(this.bytes[this.opStart])}`);
  }

  private pop(): PickleValue {
    if (this.stack.length === 0) this.underflow();
    return this.stack.pop()!;
  }

  private popN(n: number): PickleValue[] {
    if (this.stack.length < n) this.underflow();
    return this.stack.splice(this.stack.length - n, n);
  }

  private top(): PickleValue {
    if (this.stack.length === 0) this.underflow();
    return this.stack[this.stack.length - 1];
  }

  private popMark(): PickleValue[] {
    const outer = this.marks.pop();
    if (outer === undefined) this.malformed('no open MARK');
    const items = this.stack;
    this.stack = outer;
    return items;
  }

  private list(): PickleValue[] {
    const target = this.top();
    if (!Array.isArray(target) || isTuple(target)) this.malformed(`APPEND to ${describePickleValue(target)}, not a list`);
    return target;
  }

  private dict(): Map<PickleValue, PickleValue> {
    const target = this.top();
    if (!(target instanceof Map)) this.malformed(`SETITEM on ${describePickleValue(target)}, not a dict`);
    return target;
  }

  private put(index: number): void {
    this.memo.set(index, this.top());
  }

  private get(index: number): void {
    if (!this.memo.has(index)) this.malformed(`memo index ${index} was never stored`);
    this.push(this.memo.get(index)!);
  }

  // --- globals and what they may build ------------------------------------------------------------------

  private resolveGlobal(module: string, name: string): PickleGlobal {
    const qualifiedName = `${module}.${name}`;
    const role = ALLOWED_GLOBALS.get(qualifiedName);
    if (!role) {
      this.unsafe(`global '${qualifiedName}' is not allowed (a checkpoint may only reference torch tensor `
        + 'rebuilders, torch storage types, collections.OrderedDict and argparse.Namespace)');
    }
    return new PickleGlobal(qualifiedName, role);
  }

  private call(callee: PickleValue, args: PickleValue): PickleValue {
    if (!(callee instanceof PickleGlobal) || callee.role.kind !== 'function') {
      this.unsafe(`REDUCE calls ${describePickleValue(callee)}, which is not an allowed function`);
    }
    if (!isTuple(args)) this.malformed(`REDUCE arguments are ${describePickleValue(args)}, not a tuple`);
    const fn = callee.qualifiedName;
    switch (callee.role.builds) {
      case 'ordered-dict':
        if (args.length !== 0) this.malformed(`${fn} called with ${args.length} arguments; torch.save passes none`);
        return new Map();
      case 'tensor':
        return this.tensor(fn, args);
      case 'parameter':
      case 'parameter-with-state': {
        // (data, requires_grad, backward_hooks[, state]); the state only sets Python attributes: ignored.
        const arity = callee.role.builds === 'parameter' ? 3 : 4;
        if (args.length !== arity) this.malformed(`${fn} called with ${args.length} arguments, expected ${arity}`);
        if (!(args[0] instanceof TensorRef)) this.malformed(`${fn} data argument is ${describePickleValue(args[0])}, not a tensor`);
        this.requireNoHooks(fn, args[2]);
        return args[0];
      }
    }
  }

  /** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]). */
  private tensor(fn: string, args: readonly PickleValue[]): TensorRef {
    if (args.length !== 6 && args.length !== 7) this.malformed(`${fn} called with ${args.length} arguments, expected 6 or 7`);
    const [storage, offset, size, stride, , hooks] = args;
    if (!(storage instanceof StorageRef)) this.malformed(`${fn} storage argument is ${describePickleValue(storage)}, not a storage`);
    if (!isCount(offset)) this.malformed(`${fn} storage offset is not a non-negative integer`);
    if (!isTuple(size) || !size.every(isCount)) this.malformed(`${fn} size is not a tuple of non-negative integers`);
    if (!isTuple(stride) || !stride.every(isCount)) this.malformed(`${fn} stride is not a tuple of non-negative integers`);
    if (size.length !== stride.length) this.malformed(`${fn} size has ${size.length} dims but stride has ${stride.length}`);
    this.requireNoHooks(fn, hooks);
    return new TensorRef(storage, offset, size as number[], stride as number[]);
  }

  /** Backward hooks are callables; a saved state_dict has none, and any would be code. */
  private requireNoHooks(fn: string, hooks: PickleValue): void {
    if (!(hooks instanceof Map) || hooks.size !== 0) this.unsafe(`${fn} with backward hooks (${describePickleValue(hooks)})`);
  }

  private instantiate(cls: PickleValue, args: PickleValue): InertObject {
    if (!(cls instanceof PickleGlobal) || cls.role.kind !== 'class') {
      this.unsafe(`NEWOBJ creates ${describePickleValue(cls)}, which is not an allowed class`);
    }
    if (!isTuple(args)) this.malformed(`NEWOBJ arguments are ${describePickleValue(args)}, not a tuple`);
    return new InertObject(cls.qualifiedName);
  }

  /** BUILD sets state: an OrderedDict's attributes (state_dict()._metadata) are dropped, a Namespace keeps them. */
  private build(target: PickleValue, state: PickleValue): void {
    if (target instanceof InertObject) {
      target.state = state;
    } else if (!(target instanceof Map)) {
      this.unsafe(`BUILD on ${describePickleValue(target)} (only dicts and allowed plain-data objects take state)`);
    }
  }

  /** torch.save's persistent id: ('storage', storage_type, key, location, numel). */
  private storageFromPersistentId(pid: PickleValue): StorageRef {
    if (!isTuple(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      const tag = isTuple(pid) && typeof pid[0] === 'string' ? `('${pid[0].slice(0, 40)}', ...)` : describePickleValue(pid);
      this.unsafe(`persistent id is ${tag}, not a ('storage', type, key, location, numel) tuple`);
    }
    const [, type, key, location, numel] = pid;
    if (!(type instanceof PickleGlobal) || type.role.kind !== 'storage-type') {
      this.unsafe(`persistent id storage type is ${describePickleValue(type)}, not a torch storage class`);
    }
    if (typeof key !== 'string' || typeof location !== 'string' || !isCount(numel)) {
      this.malformed('persistent id key, location or numel has the wrong type');
    }
    return new StorageRef(type.role.dtype, key, numel);
  }
}
