// The subset of the ONNX protobuf schema (onnx/onnx.proto, IR version 7+) that a ResNet graph
// needs, written out by field number from the ONNX specification, and a small encoder/decoder over
// it (protobuf wire format: varints, fixed32/64, length-delimited; packed or unpacked repeated
// numbers). No code generation at run time, so ONNX works under a CSP without 'unsafe-eval'.
// Fields left out here (subgraphs in attributes, sparse tensors, training info, functions) are
// skipped as unknown fields when decoding, without recursion, so a hostile file cannot make the
// decoder recurse through nested graphs or groups. Browser-safe.
type FieldType = 'int64' | 'int32' | 'string' | 'bytes' | 'float' | 'double' | string;
interface FieldDesc {
  id: number;
  type: FieldType;
  rule?: 'repeated';
}
interface MessageDesc {
  fields: Record<string, FieldDesc>;
  oneofs?: unknown;
  nested?: Record<string, MessageDesc | { values: Record<string, number> }>;
}
interface Namespace {
  nested: { onnx: { nested: Record<string, MessageDesc> } };
}

const DESCRIPTOR: Namespace = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { id: 1, type: 'int64' },
            opsetImport: { id: 8, type: 'OperatorSetIdProto', rule: 'repeated' },
            producerName: { id: 2, type: 'string' },
            producerVersion: { id: 3, type: 'string' },
            domain: { id: 4, type: 'string' },
            modelVersion: { id: 5, type: 'int64' },
            docString: { id: 6, type: 'string' },
            graph: { id: 7, type: 'GraphProto' },
            metadataProps: { id: 14, type: 'StringStringEntryProto', rule: 'repeated' },
          },
        },
        OperatorSetIdProto: {
          fields: {
            domain: { id: 1, type: 'string' },
            version: { id: 2, type: 'int64' },
          },
        },
        StringStringEntryProto: {
          fields: {
            key: { id: 1, type: 'string' },
            value: { id: 2, type: 'string' },
          },
        },
        GraphProto: {
          fields: {
            node: { id: 1, type: 'NodeProto', rule: 'repeated' },
            name: { id: 2, type: 'string' },
            initializer: { id: 5, type: 'TensorProto', rule: 'repeated' },
            docString: { id: 10, type: 'string' },
            input: { id: 11, type: 'ValueInfoProto', rule: 'repeated' },
            output: { id: 12, type: 'ValueInfoProto', rule: 'repeated' },
            valueInfo: { id: 13, type: 'ValueInfoProto', rule: 'repeated' },
          },
        },
        NodeProto: {
          fields: {
            input: { id: 1, type: 'string', rule: 'repeated' },
            output: { id: 2, type: 'string', rule: 'repeated' },
            name: { id: 3, type: 'string' },
            opType: { id: 4, type: 'string' },
            domain: { id: 7, type: 'string' },
            attribute: { id: 5, type: 'AttributeProto', rule: 'repeated' },
            docString: { id: 6, type: 'string' },
          },
        },
        AttributeProto: {
          fields: {
            name: { id: 1, type: 'string' },
            refAttrName: { id: 21, type: 'string' },
            docString: { id: 13, type: 'string' },
            type: { id: 20, type: 'AttributeType' },
            f: { id: 2, type: 'float' },
            i: { id: 3, type: 'int64' },
            s: { id: 4, type: 'bytes' },
            t: { id: 5, type: 'TensorProto' },
            floats: { id: 7, type: 'float', rule: 'repeated' },
            ints: { id: 8, type: 'int64', rule: 'repeated' },
            strings: { id: 9, type: 'bytes', rule: 'repeated' },
          },
          nested: {
            AttributeType: {
              values: {
                UNDEFINED: 0,
                FLOAT: 1,
                INT: 2,
                STRING: 3,
                TENSOR: 4,
                GRAPH: 5,
                FLOATS: 6,
                INTS: 7,
                STRINGS: 8,
                TENSORS: 9,
                GRAPHS: 10,
                SPARSE_TENSOR: 11,
                SPARSE_TENSORS: 12,
                TYPE_PROTO: 13,
                TYPE_PROTOS: 14,
              },
            },
          },
        },
        TensorProto: {
          fields: {
            dims: { id: 1, type: 'int64', rule: 'repeated' },
            dataType: { id: 2, type: 'int32' },
            floatData: { id: 4, type: 'float', rule: 'repeated' },
            int32Data: { id: 5, type: 'int32', rule: 'repeated' },
            int64Data: { id: 7, type: 'int64', rule: 'repeated' },
            name: { id: 8, type: 'string' },
            docString: { id: 12, type: 'string' },
            rawData: { id: 9, type: 'bytes' },
            externalData: { id: 13, type: 'StringStringEntryProto', rule: 'repeated' },
            dataLocation: { id: 14, type: 'int32' },
            doubleData: { id: 10, type: 'double', rule: 'repeated' },
          },
        },
        ValueInfoProto: {
          fields: {
            name: { id: 1, type: 'string' },
            type: { id: 2, type: 'TypeProto' },
            docString: { id: 3, type: 'string' },
          },
        },
        TypeProto: {
          fields: {
            tensorType: { id: 1, type: 'TensorTypeProto' },
            denotation: { id: 6, type: 'string' },
          },
        },
        // TypeProto.Tensor in onnx.proto (a nested message there; a sibling here, same wire format).
        TensorTypeProto: {
          fields: {
            elemType: { id: 1, type: 'int32' },
            shape: { id: 2, type: 'TensorShapeProto' },
          },
        },
        TensorShapeProto: {
          fields: {
            dim: { id: 1, type: 'Dimension', rule: 'repeated' },
          },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
              fields: {
                dimValue: { id: 1, type: 'int64' },
                dimParam: { id: 2, type: 'string' },
                denotation: { id: 3, type: 'string' },
              },
            },
          },
        },
      },
    },
  },
};

/** ONNX TensorProto.DataType values used here. */
export const ONNX_DTYPE = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;

/** AttributeProto.AttributeType values used here. */
export const ATTR_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** A message type of the schema: decode bytes to a plain object, encode a plain object to bytes. */
export interface OnnxMessageType {
  decode(bytes: Uint8Array): Record<string, unknown>;
  encode(message: object): { finish(): Uint8Array };
}

interface Field {
  name: string;
  id: number;
  kind: 'int64' | 'int32' | 'string' | 'bytes' | 'float' | 'double' | 'message';
  repeated: boolean;
  message?: Msg;
}
interface Msg {
  byId: Map<number, Field>;
  fields: Field[];
}

const SCALARS = new Set(['int64', 'int32', 'string', 'bytes', 'float', 'double']);
let compiled: Map<string, Msg> | null = null;

/** The schema's messages, by short name (nested ones too: 'Dimension'); enums are int32. */
function schema(): Map<string, Msg> {
  if (compiled) return compiled;
  const descs = new Map<string, MessageDesc>();
  const enums = new Set<string>();
  const walk = (d: Record<string, MessageDesc | { values: Record<string, number> }>) => {
    for (const [name, m] of Object.entries(d)) {
      if ('values' in m) enums.add(name);
      else {
        descs.set(name, m);
        if (m.nested) walk(m.nested);
      }
    }
  };
  walk(DESCRIPTOR.nested.onnx.nested);
  const msgs = new Map<string, Msg>();
  for (const name of descs.keys()) msgs.set(name, { byId: new Map(), fields: [] });
  for (const [name, d] of descs) {
    const m = msgs.get(name)!;
    for (const [fname, f] of Object.entries(d.fields)) {
      const kind = SCALARS.has(f.type) ? (f.type as Field['kind']) : enums.has(f.type) ? 'int32' : 'message';
      const field: Field = { name: fname, id: f.id, kind, repeated: f.rule === 'repeated', message: kind === 'message' ? msgs.get(f.type) : undefined };
      if (kind === 'message' && !field.message) throw new Error(`onnx schema: unknown type ${f.type}`);
      m.byId.set(f.id, field);
      m.fields.push(field);
    }
  }
  return (compiled = msgs);
}

const utf8 = new TextDecoder();

class Reader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength),
  ) {}

  /** A varint as a bigint when it does not fit 53 bits, else as a number (unsigned). */
  varint(): number | bigint {
    let lo = 0,
      shift = 0;
    for (let i = 0; i < 7; i++) {
      const b = this.byte();
      lo += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80) return lo;
    }
    let big = BigInt(lo);
    for (let i = 7; i < 10; i++) {
      const b = this.byte();
      big |= BigInt(b & 0x7f) << BigInt(shift);
      shift += 7;
      if (b < 0x80) return BigInt.asUintN(64, big);
    }
    throw new Error('varint longer than 10 bytes');
  }

  uint(): number {
    const v = this.varint();
    if (typeof v === 'bigint') throw new Error('length or tag out of range');
    return v;
  }

  byte(): number {
    if (this.pos >= this.buf.length) throw new Error(`unexpected end of data at byte ${this.pos}`);
    return this.buf[this.pos++];
  }

  take(n: number): Uint8Array {
    if (n > this.buf.length - this.pos) throw new Error(`a length of ${n} bytes runs past the end (at byte ${this.pos})`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  fixed(n: 4 | 8): number {
    if (n > this.buf.length - this.pos) throw new Error(`unexpected end of data at byte ${this.pos}`);
    const v = n === 4 ? this.view.getFloat32(this.pos, true) : this.view.getFloat64(this.pos, true);
    this.pos += n;
    return v;
  }

  /** Skip one value of an unknown field; groups are skipped with a counter, not recursion. */
  skip(wire: number): void {
    let depth = 0;
    for (;;) {
      if (wire === 0) this.varint();
      else if (wire === 1) this.take(8);
      else if (wire === 2) this.take(this.uint());
      else if (wire === 5) this.take(4);
      else if (wire === 3) depth++;
      else if (wire === 4) {
        if (depth === 0) throw new Error('unexpected end group');
        depth--;
      } else throw new Error(`invalid wire type ${wire}`);
      if (depth === 0) return;
      wire = this.uint() & 7;
    }
  }
}

/** int64 from a varint: a number where exact (|v| <= 2^53), else its decimal string. */
function int64From(v: number | bigint): number | string {
  if (typeof v === 'number') return v;
  const s = BigInt.asIntN(64, v);
  return s >= BigInt(Number.MIN_SAFE_INTEGER) && s <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(s) : s.toString();
}

function scalar(r: Reader, f: Field): unknown {
  switch (f.kind) {
    case 'int64':
      return int64From(r.varint());
    case 'int32': {
      const v = r.varint();
      return typeof v === 'number' ? v | 0 : Number(BigInt.asIntN(32, v));
    }
    case 'float':
      return r.fixed(4);
    case 'double':
      return r.fixed(8);
    case 'string':
      return utf8.decode(r.take(r.uint()));
    case 'bytes':
      return r.take(r.uint());
    default:
      throw new Error('not a scalar');
  }
}

const WIRE: Record<Field['kind'], number> = { int64: 0, int32: 0, float: 5, double: 1, string: 2, bytes: 2, message: 2 };

function decodeMessage(r: Reader, m: Msg, end: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of m.fields) if (f.repeated) out[f.name] = [];
  while (r.pos < end) {
    const tag = r.uint();
    const id = Math.floor(tag / 8),
      wire = tag & 7;
    const f = m.byId.get(id);
    if (!f || id === 0) {
      r.skip(wire);
      continue;
    }
    if (f.kind === 'message') {
      if (wire !== 2) throw new Error(`field ${f.name}: wire type ${wire}, expected 2`);
      const len = r.uint();
      if (len > end - r.pos) throw new Error(`a length of ${len} bytes runs past the end (at byte ${r.pos})`);
      const v = decodeMessage(r, f.message!, r.pos + len);
      if (f.repeated) (out[f.name] as unknown[]).push(v);
      else out[f.name] = v;
    } else if (f.repeated && wire === 2 && WIRE[f.kind] !== 2) {
      const len = r.uint();
      const stop = r.pos + len;
      if (len > end - r.pos) throw new Error(`a length of ${len} bytes runs past the end (at byte ${r.pos})`);
      const list = out[f.name] as unknown[];
      while (r.pos < stop) list.push(scalar(r, f));
      if (r.pos !== stop) throw new Error(`packed field ${f.name} overruns its length`);
    } else {
      if (wire !== WIRE[f.kind]) throw new Error(`field ${f.name}: wire type ${wire}, expected ${WIRE[f.kind]}`);
      const v = scalar(r, f);
      if (f.repeated) (out[f.name] as unknown[]).push(v);
      else out[f.name] = v;
    }
    if (r.pos > end) throw new Error('a field overruns its message');
  }
  return out;
}

class Writer {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1024);
  private n = 0;
  length = 0;

  private room(k: number): void {
    if (this.n + k <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.n));
    this.cur = new Uint8Array(Math.max(k, 64 * 1024));
    this.n = 0;
  }

  byte(b: number): void {
    this.room(1);
    this.cur[this.n++] = b;
    this.length++;
  }

  varint(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      while (v >= 0x80) {
        this.byte((v % 0x80) | 0x80);
        v = Math.floor(v / 0x80);
      }
      this.byte(v);
      return;
    }
    let b = BigInt.asUintN(64, BigInt(v));
    while (b >= 0x80n) {
      this.byte(Number(b & 0x7fn) | 0x80);
      b >>= 7n;
    }
    this.byte(Number(b));
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.cur.set(b, this.n);
    this.n += b.length;
    this.length += b.length;
  }

  fixed(v: number, n: 4 | 8): void {
    const b = new Uint8Array(n);
    const dv = new DataView(b.buffer);
    if (n === 4) dv.setFloat32(0, v, true);
    else dv.setFloat64(0, v, true);
    this.bytes(b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of [...this.chunks, this.cur.subarray(0, this.n)]) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** An int64 given as a number, decimal string, bigint or Long-like {low, high}. */
function int64Of(v: unknown, name: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  if (v && typeof v === 'object' && 'low' in v && 'high' in v) {
    const l = v as { low: number; high: number };
    return BigInt.asIntN(64, (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0));
  }
  throw new Error(`field ${name}: ${String(v)} is not an int64`);
}

const utf8enc = new TextEncoder();

function writeScalar(w: Writer, f: Field, v: unknown): void {
  switch (f.kind) {
    case 'int64':
      w.varint(int64Of(v, f.name));
      break;
    case 'int32': {
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`field ${f.name}: ${String(v)} is not an int32`);
      w.varint(v < 0 ? BigInt(v) : v);
      break;
    }
    case 'float':
      w.fixed(Number(v), 4);
      break;
    case 'double':
      w.fixed(Number(v), 8);
      break;
    case 'string': {
      const b = utf8enc.encode(String(v));
      w.varint(b.length);
      w.bytes(b);
      break;
    }
    case 'bytes': {
      if (!(v instanceof Uint8Array)) throw new Error(`field ${f.name}: expected bytes`);
      w.varint(v.length);
      w.bytes(v);
      break;
    }
    default:
      throw new Error('not a scalar');
  }
}

function encodeMessage(w: Writer, m: Msg, obj: Record<string, unknown>): void {
  for (const f of m.fields) {
    const v = obj[f.name];
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      if (!Array.isArray(v)) throw new Error(`field ${f.name}: expected a list`);
      if (v.length === 0) continue;
      if (WIRE[f.kind] !== 2) {
        // packed: one length-delimited run
        const inner = new Writer();
        for (const x of v) writeScalar(inner, f, x);
        w.varint(f.id * 8 + 2);
        w.varint(inner.length);
        w.bytes(inner.finish());
      } else {
        for (const x of v) writeField(w, f, x);
      }
    } else {
      writeField(w, f, v);
    }
  }
}

function writeField(w: Writer, f: Field, v: unknown): void {
  w.varint(f.id * 8 + WIRE[f.kind]);
  if (f.kind === 'message') {
    const inner = new Writer();
    encodeMessage(inner, f.message!, v as Record<string, unknown>);
    w.varint(inner.length);
    w.bytes(inner.finish());
  } else {
    writeScalar(w, f, v);
  }
}

export function onnxType(name: 'ModelProto' | 'TensorProto' | 'GraphProto'): OnnxMessageType {
  const m = schema().get(name)!;
  return {
    decode(bytes) {
      return decodeMessage(new Reader(bytes), m, bytes.length);
    },
    encode(message) {
      const w = new Writer();
      encodeMessage(w, m, message as Record<string, unknown>);
      return { finish: () => w.finish() };
    },
  };
}

// Plain-object shapes of the decoded messages (int64 as a number where exact, else a decimal string).
export type Int64 = number | string | { toNumber(): number; high: number; low: number; unsigned?: boolean };

export interface OnnxTensor {
  dims?: Int64[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: Int64[];
  doubleData?: number[];
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData?: { key?: string; value?: string }[];
  dataLocation?: number;
}

export interface OnnxAttribute {
  name?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: OnnxTensor;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  refAttrName?: string;
}

export interface OnnxNode {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute?: OnnxAttribute[];
}

export interface OnnxDim {
  dimValue?: Int64;
  dimParam?: string;
}

export interface OnnxValueInfo {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: OnnxDim[] } } };
}

export interface OnnxGraph {
  node?: OnnxNode[];
  name?: string;
  initializer?: OnnxTensor[];
  input?: OnnxValueInfo[];
  output?: OnnxValueInfo[];
  valueInfo?: OnnxValueInfo[];
  docString?: string;
}

export interface OnnxModel {
  irVersion?: Int64;
  opsetImport?: { domain?: string; version?: Int64 }[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: Int64;
  docString?: string;
  graph?: OnnxGraph;
  metadataProps?: { key?: string; value?: string }[];
}
