// ONNX decoding with validation: the protobuf is decoded through the schema subset in
// onnx-schema.ts, then every initializer's declared dims and data size are checked (and the
// totals bounded) before any tensor is materialised, so a hostile file with absurd dimensions
// or a short payload gets a FormatError without a large allocation. Browser-safe.
import { FormatError } from '../base/errors.js';
import { type DType, DTYPE_SIZE, checkedNumel, decodeLE } from './types.js';
import {
  type Int64,
  type OnnxAttribute,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  ATTR_TYPE,
  ONNX_DTYPE,
  onnxType,
} from './onnx-schema.js';

export interface OnnxLimits {
  /** Largest file accepted (protobuf's own limit is 2 GiB). */
  maxBytes: number;
  maxNodes: number;
  maxInitializers: number;
  /** Most elements in one tensor. */
  maxTensorElements: number;
  /** Most elements over all initializers. */
  maxTotalElements: number;
}

export const DEFAULT_ONNX_LIMITS: Readonly<OnnxLimits> = {
  maxBytes: 2 ** 31 - 1,
  maxNodes: 100_000,
  maxInitializers: 100_000,
  maxTensorElements: 2 ** 28,
  maxTotalElements: 2 ** 29,
};

const FLOAT_TYPES: Partial<Record<number, DType>> = {
  [ONNX_DTYPE.FLOAT]: 'F32',
  [ONNX_DTYPE.FLOAT16]: 'F16',
  [ONNX_DTYPE.BFLOAT16]: 'BF16',
  [ONNX_DTYPE.DOUBLE]: 'F64',
  [ONNX_DTYPE.INT64]: 'I64',
  [ONNX_DTYPE.INT32]: 'I32',
  [ONNX_DTYPE.INT8]: 'I8',
  [ONNX_DTYPE.UINT8]: 'U8',
  [ONNX_DTYPE.INT16]: 'I16',
  [ONNX_DTYPE.BOOL]: 'BOOL',
};

/** An int64 field as a JS number (Long objects included); exact only within ±2^53. */
export function int64Number(v: Int64 | undefined | null): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  return v.toNumber();
}

function safeDim(v: Int64, what: string): number {
  const n = int64Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new FormatError(`${what}: invalid dimension ${typeof v === 'object' ? String(v) : v}`);
  return n;
}

/** A validated tensor: dims checked against the data actually present. */
export interface TensorInfo {
  name: string;
  dims: number[];
  numel: number;
  dtype: DType;
  proto: OnnxTensor;
}

export function checkTensor(t: OnnxTensor, what: string, limits: OnnxLimits): TensorInfo {
  const name = t.name ?? '';
  const label = `${what} '${name}'`;
  if ((t.dataLocation ?? 0) !== 0 || (t.externalData?.length ?? 0) > 0) {
    throw new FormatError(`${label}: external tensor data is not supported (save the model with its weights inside the file)`);
  }
  const rawDims = t.dims ?? [];
  if (rawDims.length > 8) throw new FormatError(`${label}: ${rawDims.length} dimensions`);
  const dims = rawDims.map((d) => safeDim(d, label));
  const dataType = t.dataType ?? 0;
  const dtype = FLOAT_TYPES[dataType];
  if (!dtype) throw new FormatError(`${label}: unsupported data type ${dataType}`);
  const numel = checkedNumel(dims, label, DTYPE_SIZE[dtype]);
  if (numel > limits.maxTensorElements) {
    throw new FormatError(`${label}: shape [${dims.join(', ')}] has ${numel} elements, over the limit of ${limits.maxTensorElements}`);
  }
  const raw = t.rawData;
  let have: number, field: string;
  if (raw && raw.length > 0) {
    have = raw.length;
    if (have !== numel * DTYPE_SIZE[dtype]) {
      throw new FormatError(`${label}: shape [${dims.join(', ')}] needs ${numel * DTYPE_SIZE[dtype]} bytes of ${dtype}, raw_data has ${have}`);
    }
    return { name, dims, numel, dtype, proto: t };
  }
  switch (dtype) {
    case 'F32':
      have = t.floatData?.length ?? 0;
      field = 'float_data';
      break;
    case 'F64':
      have = t.doubleData?.length ?? 0;
      field = 'double_data';
      break;
    case 'I64':
      have = t.int64Data?.length ?? 0;
      field = 'int64_data';
      break;
    default:
      have = t.int32Data?.length ?? 0;
      field = 'int32_data';
      break; // F16/BF16/I32/I16/I8/U8/BOOL live in int32_data
  }
  if (have !== numel) throw new FormatError(`${label}: shape [${dims.join(', ')}] needs ${numel} values, ${field} has ${have}`);
  return { name, dims, numel, dtype, proto: t };
}

/** Materialise a validated tensor as float32. */
export function tensorToFloat32(info: TensorInfo): Float32Array {
  const t = info.proto;
  if (t.rawData && t.rawData.length > 0) return decodeLE(info.dtype, t.rawData, info.numel);
  switch (info.dtype) {
    case 'F32':
      return Float32Array.from(t.floatData ?? []);
    case 'F64':
      return Float32Array.from(t.doubleData ?? []);
    case 'I64':
      return Float32Array.from((t.int64Data ?? []).map(int64Number));
    case 'F16':
    case 'BF16': {
      // Stored as uint16 bit patterns in int32_data.
      const u = new Uint8Array(info.numel * 2);
      const dv = new DataView(u.buffer);
      (t.int32Data ?? []).forEach((v, i) => dv.setUint16(2 * i, v & 0xffff, true));
      return decodeLE(info.dtype, u, info.numel);
    }
    default:
      return Float32Array.from(t.int32Data ?? []);
  }
}

/** Materialise a small integer tensor (shape/axes/pads constants) as numbers; int64 beyond 2^53 saturate to ±Infinity-like huge values. */
export function tensorToInts(info: TensorInfo, maxElements = 64): number[] {
  if (info.numel > maxElements) throw new FormatError(`onnx: constant '${info.name}': ${info.numel} elements where a short integer list is expected`);
  const t = info.proto;
  if (info.dtype !== 'I64' && info.dtype !== 'I32') throw new FormatError(`onnx: constant '${info.name}': expected int64 values, got ${info.dtype}`);
  if (t.rawData && t.rawData.length > 0) {
    const dv = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    const out: number[] = [];
    for (let i = 0; i < info.numel; i++) out.push(info.dtype === 'I64' ? Number(dv.getBigInt64(8 * i, true)) : dv.getInt32(4 * i, true));
    return out;
  }
  return info.dtype === 'I64' ? (t.int64Data ?? []).map(int64Number) : [...(t.int32Data ?? [])];
}

export interface GNode {
  index: number;
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, OnnxAttribute>;
}

/** A decoded, validated graph with data-flow indexes. */
export interface ParsedOnnx {
  model: OnnxModel;
  graph: OnnxGraph;
  opset: number;
  irVersion: number;
  producer: string;
  nodes: GNode[];
  /** Initializers by name (validated). */
  initializers: Map<string, TensorInfo>;
  /** The one graph input that is not an initializer, and its declared dims (numbers or symbols). */
  input: { name: string; dims: (number | string)[] | null; elemType: number };
  outputs: string[];
  metadata: Map<string, string>;
}

/** Decode and validate an ONNX model; no tensor data is materialised here. */
export function parseOnnx(bytes: Uint8Array, limits: OnnxLimits = DEFAULT_ONNX_LIMITS): ParsedOnnx {
  if (!(bytes instanceof Uint8Array)) throw new FormatError('onnx: expected bytes');
  if (bytes.length > limits.maxBytes) throw new FormatError(`onnx: file of ${bytes.length} bytes is over the ${limits.maxBytes}-byte limit`);
  if (bytes.length === 0) throw new FormatError('onnx: empty file');
  let model: OnnxModel;
  try {
    model = onnxType('ModelProto').decode(bytes) as unknown as OnnxModel;
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    throw new FormatError(`onnx: not a valid ONNX protobuf (${msg.split('\n')[0].slice(0, 120)})`);
  }
  const graph = model.graph;
  if (!graph) throw new FormatError('onnx: the file has no graph (not an ONNX model?)');
  const irVersion = int64Number(model.irVersion);
  let opset = -1;
  for (const o of model.opsetImport ?? []) {
    const d = o.domain ?? '';
    if (d === '' || d === 'ai.onnx') opset = int64Number(o.version);
  }
  if (opset < 1 || opset > 1000) throw new FormatError(`onnx: missing or invalid default-domain opset (${opset})`);
  const rawNodes = graph.node ?? [];
  if (rawNodes.length > limits.maxNodes) throw new FormatError(`onnx: ${rawNodes.length} nodes, over the limit of ${limits.maxNodes}`);
  const rawInits = graph.initializer ?? [];
  if (rawInits.length > limits.maxInitializers) throw new FormatError(`onnx: ${rawInits.length} initializers, over the limit of ${limits.maxInitializers}`);

  const initializers = new Map<string, TensorInfo>();
  let total = 0;
  for (const t of rawInits) {
    const info = checkTensor(t, 'onnx: initializer', limits);
    if (!info.name) throw new FormatError('onnx: an initializer has no name');
    if (initializers.has(info.name)) throw new FormatError(`onnx: initializer '${info.name}' is defined twice`);
    total += info.numel;
    if (total > limits.maxTotalElements) throw new FormatError(`onnx: initializers hold more than ${limits.maxTotalElements} elements`);
    initializers.set(info.name, info);
  }

  const nodes: GNode[] = rawNodes.map((n: OnnxNode, index) => {
    const domain = n.domain ?? '';
    const op = n.opType ?? '';
    if (domain !== '' && domain !== 'ai.onnx')
      throw new FormatError(`onnx: node ${index} '${n.name ?? ''}' uses operator ${domain}::${op}, outside the standard domain`);
    if (!op) throw new FormatError(`onnx: node ${index} has no op_type`);
    const attrs = new Map<string, OnnxAttribute>();
    for (const a of n.attribute ?? []) attrs.set(a.name ?? '', a);
    return { index, op, name: n.name || `#${index}`, inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs };
  });

  const dataInputs = (graph.input ?? []).filter((v) => !initializers.has(v.name ?? ''));
  if (dataInputs.length !== 1) {
    throw new FormatError(`onnx: expected one image input, the graph has ${dataInputs.length} (${dataInputs.map((v) => v.name).join(', ')})`);
  }
  const vi = dataInputs[0];
  const tt = vi.type?.tensorType;
  const dims = tt?.shape?.dim
    ? tt.shape.dim.map((d) =>
        d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? safeDim(d.dimValue, `onnx: input '${vi.name}'`) : '?',
      )
    : null;
  const outputs = (graph.output ?? []).map((v) => v.name ?? '');
  const metadata = new Map<string, string>();
  for (const p of model.metadataProps ?? []) metadata.set(p.key ?? '', p.value ?? '');
  return {
    model,
    graph,
    opset,
    irVersion,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    nodes,
    initializers,
    input: { name: vi.name ?? '', dims, elemType: tt?.elemType ?? 0 },
    outputs,
    metadata,
  };
}

// Attribute accessors with defaults and type checks.
export function attrInts(n: GNode, name: string, dflt: number[] | null): number[] | null {
  const a = n.attrs.get(name);
  if (!a) return dflt;
  if ((a.type ?? ATTR_TYPE.INTS) !== ATTR_TYPE.INTS) throw new FormatError(`onnx: node '${n.name}' (${n.op}) attribute ${name} is not a list of ints`);
  if ((a.ints?.length ?? 0) > 16) throw new FormatError(`onnx: node '${n.name}' (${n.op}) attribute ${name} has ${a.ints?.length} entries`);
  return (a.ints ?? []).map(int64Number);
}

export function attrInt(n: GNode, name: string, dflt: number): number {
  const a = n.attrs.get(name);
  if (!a) return dflt;
  if ((a.type ?? ATTR_TYPE.INT) !== ATTR_TYPE.INT) throw new FormatError(`onnx: node '${n.name}' (${n.op}) attribute ${name} is not an int`);
  return int64Number(a.i);
}

export function attrFloat(n: GNode, name: string, dflt: number): number {
  const a = n.attrs.get(name);
  if (!a) return dflt;
  if ((a.type ?? ATTR_TYPE.FLOAT) !== ATTR_TYPE.FLOAT) throw new FormatError(`onnx: node '${n.name}' (${n.op}) attribute ${name} is not a float`);
  return a.f ?? 0;
}

export function attrString(n: GNode, name: string, dflt: string): string {
  const a = n.attrs.get(name);
  if (!a) return dflt;
  if ((a.type ?? ATTR_TYPE.STRING) !== ATTR_TYPE.STRING) throw new FormatError(`onnx: node '${n.name}' (${n.op}) attribute ${name} is not a string`);
  return new TextDecoder().decode(a.s ?? new Uint8Array(0));
}
