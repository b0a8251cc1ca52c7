// One structural description per model: what a residual network is made of, in a small
// vocabulary that describe(), inference fusion (fused.ts), ONNX export and ONNX import
// (src/convert/) all read, so a new block or shortcut variant is written once, in its model file.
//
//   unit     conv (+ BatchNorm) (+ ReLU) | max/avg pool | option-A subsample + zero channel pad
//   block    out = relu(main(x) + shortcut(x)); an empty shortcut is the identity
//   model    stem units → stages of blocks → head (global average pool, flatten, fc) or none
//
// Every unit names the state-dict paths of its modules, so weights map by structure, not by
// guessing key names. The modules themselves still compute the training forward.
import { ConfigError, ShapeError } from '../base/errors.js';
import { shapeStr, type Shape } from '../base/shape.js';
import { AvgPool2d, BatchNorm2d, Conv2d, Identity, MaxPool2d, ReLU, type AdaptiveAvgPool2d } from '../nn/layers.js';
import type { LayerInfo, Module } from '../nn/module.js';

export interface ConvUnit {
  kind: 'conv';
  path: string;
  conv: Conv2d;
  /** The BatchNorm right after the conv (null: none, as d2l's 1x1 shortcut). */
  bn: BatchNorm2d | null;
  bnPath: string | null;
  /** A ReLU after the conv (and BN), with the path of the ReLU module shown by describe(). */
  relu: string | null;
}
export interface PoolUnit {
  kind: 'pool';
  path: string;
  pool: MaxPool2d | AvgPool2d;
}
/** Option A (He et al. 2015): x[:, :, ::stride, ::stride] with zero channels padded on both sides. No parameters. */
export interface PadUnit {
  kind: 'subsamplePad';
  stride: number;
  padBefore: number;
  padAfter: number;
}
export type Unit = ConvUnit | PoolUnit | PadUnit;

export interface BlockStructure {
  /** State-dict prefix of the block, e.g. `layer2.0`. */
  path: string;
  main: Unit[];
  /** [] is the identity. */
  shortcut: Unit[];
}

export interface ModelStructure {
  inChannels: number;
  stem: Unit[];
  stages: BlockStructure[][];
  /** Global average pool → flatten → fc (any module: replaceHead may put a Sequential there); null for a headless model. */
  head: { pool: AdaptiveAvgPool2d; poolPath: string; fc: Module; fcPath: string } | null;
}

/** A model that describes itself (the zoo's ResNets); its blocks implement blockStructure. */
export interface Structured {
  structure(): ModelStructure;
}

/** A module that is not in the structural vocabulary (a custom block or layer). */
export class UnknownStructureError extends ConfigError {}

export function structureOf(m: Module): ModelStructure | null {
  const s = (m as Partial<Structured>).structure;
  return typeof s === 'function' ? s.call(m) : null;
}

/** Builds units with paths under `prefix`. */
export function unitsAt(prefix: string) {
  const p = (n: string) => (prefix ? `${prefix}.${n}` : n);
  return {
    conv: (name: string, conv: Conv2d, bn: [string, BatchNorm2d] | null, relu: string | null = null): ConvUnit => ({
      kind: 'conv',
      path: p(name),
      conv,
      bn: bn ? bn[1] : null,
      bnPath: bn ? p(bn[0]) : null,
      relu: relu === null ? null : p(relu),
    }),
    pool: (name: string, pool: MaxPool2d | AvgPool2d): PoolUnit => ({ kind: 'pool', path: p(name), pool }),
  };
}

/**
 * The units of a Sequential made of Conv2d [BatchNorm2d] [ReLU], MaxPool2d/AvgPool2d and Identity
 * children (torchvision's downsample, d2l's stem), with their paths under `path`.
 */
export function sequentialUnits(seq: Module, path: string): Unit[] {
  const kids = [...seq.children()];
  const units: Unit[] = [];
  const at = unitsAt(path);
  for (let i = 0; i < kids.length; i++) {
    const [name, m] = kids[i];
    if (m instanceof Conv2d) {
      const bn = kids[i + 1]?.[1] instanceof BatchNorm2d ? (kids[++i] as [string, BatchNorm2d]) : null;
      const relu = kids[i + 1]?.[1] instanceof ReLU ? kids[++i][0] : null;
      units.push(at.conv(name, m, bn, relu));
    } else if (m instanceof MaxPool2d || m instanceof AvgPool2d) units.push(at.pool(name, m));
    else if (!(m instanceof Identity)) throw new UnknownStructureError(`${path}.${name} (${m.constructor.name}) is not a conv, BatchNorm, ReLU or pool`);
  }
  return units;
}

/** The blocks of a Sequential stage whose children implement blockStructure. */
export function stageBlocks(stage: Module, path: string): BlockStructure[] {
  return [...stage.children()].map(([n, b]) => {
    const f = (b as Partial<{ blockStructure(p: string): BlockStructure }>).blockStructure;
    if (typeof f !== 'function') throw new UnknownStructureError(`${path}.${n} (${b.constructor.name}) does not describe its structure`);
    return f.call(b, `${path}.${n}`);
  });
}

/** describe() rows of units applied to a [C, H, W] input. */
export function describeUnits(units: Unit[], inShape: Shape): { outShape: number[]; rows: LayerInfo[] } {
  let shape = [...inShape];
  const rows: LayerInfo[] = [];
  const add = (r: { outShape: number[]; rows: LayerInfo[] }) => {
    rows.push(...r.rows);
    shape = r.outShape;
  };
  for (const u of units) {
    if (u.kind === 'conv') {
      add(u.conv.describe(shape, u.path));
      if (u.bn) add(u.bn.describe(shape, u.bnPath!));
      if (u.relu) rows.push({ name: u.relu, type: 'ReLU', outShape: shape, params: 0, macs: 0 });
    } else if (u.kind === 'pool') add(u.pool.describe(shape, u.path));
    else {
      const sub = (d: number) => Math.ceil(d / u.stride);
      shape = [shape[0] + u.padBefore + u.padAfter, sub(shape[1]), sub(shape[2])];
    }
  }
  return { outShape: shape, rows };
}

export function describeBlock(b: BlockStructure, inShape: Shape): { outShape: number[]; rows: LayerInfo[] } {
  const main = describeUnits(b.main, inShape);
  const sc = describeUnits(b.shortcut, inShape);
  if (sc.outShape.join() !== main.outShape.join()) {
    throw new ShapeError(`${b.path}: the residual branch gives [${main.outShape}], the shortcut [${sc.outShape}]`);
  }
  const optionA = b.shortcut.some((u) => u.kind === 'subsamplePad');
  return {
    outShape: main.outShape,
    rows: [
      ...main.rows,
      ...sc.rows,
      { name: `${b.path}.add+relu`, type: optionA ? 'Add+ReLU (option A)' : 'Add+ReLU', outShape: main.outShape, params: 0, macs: 0 },
    ],
  };
}

/** describe() of a whole structured model. */
export function describeStructure(s: ModelStructure, inShape: Shape): { outShape: number[]; rows: LayerInfo[] } {
  if (inShape[0] !== s.inChannels) throw new ShapeError(`the model expects ${s.inChannels} input channel(s), got input ${shapeStr(inShape)}`);
  const stem = describeUnits(s.stem, inShape);
  const rows = [...stem.rows];
  let shape = stem.outShape;
  for (const b of s.stages.flat()) {
    const r = describeBlock(b, shape);
    rows.push(...r.rows);
    shape = r.outShape;
  }
  if (!s.head) return { outShape: shape, rows };
  const pooled = s.head.pool.describe(shape, s.head.poolPath);
  const flat = [pooled.outShape.reduce((a, b) => a * b, 1)];
  const fc = s.head.fc.describe(flat, s.head.fcPath);
  return { outShape: fc.outShape, rows: [...rows, ...pooled.rows, { name: 'flatten', type: 'Flatten', outShape: flat, params: 0, macs: 0 }, ...fc.rows] };
}

/**
 * Fold BatchNorm(γ, β, μ, σ², ε) into the conv before it, per output channel k (in float64):
 *   s_k = γ_k / √(σ²_k + ε),   w'_k = w_k · s_k,   b'_k = (c_k − μ_k) · s_k + β_k   (c: the conv bias, or 0)
 * `w` is [K, ...]; returns new arrays.
 */
export function foldBatchNorm(
  w: Float32Array,
  c: Float32Array | null,
  bn: { gamma: Float32Array | null; beta: Float32Array | null; mean: Float32Array; var: Float32Array; eps: number },
): { w: Float32Array; b: Float32Array } {
  const K = bn.mean.length,
    per = w.length / K;
  const ow = new Float32Array(w.length),
    ob = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    const s = (bn.gamma ? bn.gamma[k] : 1) / Math.sqrt(bn.var[k] + bn.eps);
    for (let i = k * per; i < (k + 1) * per; i++) ow[i] = w[i] * s;
    ob[k] = ((c ? c[k] : 0) - bn.mean[k]) * s + (bn.beta ? bn.beta[k] : 0);
  }
  return { w: ow, b: ob };
}
