// Building an ONNX ModelProto (format level, no model knowledge): a graph builder that names
// nodes and values and stores float/int64 initializers as little-endian raw data, and the
// encoder that wraps nodes, initializers, input and output into a verified ModelProto.
// src/convert/onnx-export.ts maps a model onto it. Browser-safe.
import { ATTR_TYPE, ONNX_DTYPE, onnxType } from './onnx-schema.js';
import { encodeLE } from './types.js';

export const MIN_OPSET = 13;
export const MAX_OPSET = 21;
/** IR version per opset (onnx/helper.py's VERSION_TABLE facts: opset 13→IR 7, 14→7, 15→8, 16→8, 17→8, 18→8, 19→9, 20→9, 21→10). */
export const IR_FOR_OPSET: Record<number, number> = { 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };

export interface OnnxInit {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}
export interface OnnxAttr {
  name: string;
  type: number;
  i?: number;
  f?: number;
  ints?: number[];
  s?: Uint8Array;
}
export interface OnnxNodeOut {
  name: string;
  opType: string;
  input: string[];
  output: string[];
  attribute: OnnxAttr[];
}

export const ints = (name: string, v: number[]): OnnxAttr => ({ name, type: ATTR_TYPE.INTS, ints: v });
export const int = (name: string, v: number): OnnxAttr => ({ name, type: ATTR_TYPE.INT, i: v });
export const float = (name: string, v: number): OnnxAttr => ({ name, type: ATTR_TYPE.FLOAT, f: v });

export class GraphBuilder {
  readonly nodes: OnnxNodeOut[] = [];
  readonly inits = new Map<string, OnnxInit>();
  private counter = 0;
  private readonly nodeNames = new Set<string>();

  constructor(readonly opset: number) {}

  fresh(base: string): string {
    return `${base || 'v'}:${this.counter++}`;
  }

  node(opType: string, name: string, input: string[], attribute: OnnxAttr[] = [], outName?: string): string {
    const out = outName ?? this.fresh(`${name}/${opType}`);
    let nodeName = `${name}/${opType}`;
    if (this.nodeNames.has(nodeName)) nodeName = this.fresh(nodeName);
    this.nodeNames.add(nodeName);
    this.nodes.push({ name: nodeName, opType, input, output: [out], attribute });
    return out;
  }

  floatInit(name: string, dims: readonly number[], data: Float32Array): string {
    if (this.inits.has(name)) return name;
    this.inits.set(name, { name, dims: [...dims], dataType: ONNX_DTYPE.FLOAT, rawData: encodeLE('F32', data, name) });
    return name;
  }

  int64Init(name: string, values: (number | bigint)[]): string {
    if (this.inits.has(name)) return name;
    const a = new BigInt64Array(values.map((v) => BigInt(v)));
    const raw = new Uint8Array(a.byteLength);
    const dv = new DataView(raw.buffer);
    a.forEach((v, i) => dv.setBigInt64(8 * i, v, true));
    this.inits.set(name, { name, dims: [values.length], dataType: ONNX_DTYPE.INT64, rawData: raw });
    return name;
  }
}

export const str = (name: string, v: string): OnnxAttr => ({ name, type: ATTR_TYPE.STRING, s: new TextEncoder().encode(v) });

export interface OnnxValueInfo {
  name: string;
  dims: (number | string)[];
}

/** Serialize a float graph (one input, one output) as ModelProto bytes; dims given as strings are symbolic. */
export function encodeOnnxModel(
  g: GraphBuilder,
  io: { input: OnnxValueInfo; output: OnnxValueInfo; metadata?: Record<string, string>; docString?: string },
): Uint8Array {
  const dim = (v: number | string) => (typeof v === 'string' ? { dimParam: v } : { dimValue: v });
  const valueInfo = (v: OnnxValueInfo) => ({
    name: v.name,
    type: { tensorType: { elemType: ONNX_DTYPE.FLOAT, shape: { dim: v.dims.map(dim) } } },
  });
  const msg = {
    irVersion: IR_FOR_OPSET[g.opset],
    producerName: 'resnet-ts',
    producerVersion: '0.1.0',
    docString: io.docString ?? '',
    opsetImport: [{ domain: '', version: g.opset }],
    metadataProps: Object.entries(io.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: { name: 'resnet', node: g.nodes, initializer: [...g.inits.values()], input: [valueInfo(io.input)], output: [valueInfo(io.output)] },
  };
  // the encoder throws on a value of the wrong type (an internal error: the builder makes every field)
  return onnxType('ModelProto').encode(msg).finish();
}
