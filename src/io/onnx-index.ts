// ONNX graph indexing and constant folding (format level, no model knowledge): who produces and
// who consumes each value, the constants (initializers, Constant nodes, Identity of a constant,
// and the small integer subgraphs torch emits for F.pad's pads, folded to a fixed point), and
// data-path Identity/Dropout as aliases. The pattern walk in src/convert/onnx-import.ts reads
// a ResNet off this index. Browser-safe.
import { FormatError } from '../base/errors.js';
import {
  type GNode,
  type OnnxLimits,
  type ParsedOnnx,
  type TensorInfo,
  DEFAULT_ONNX_LIMITS,
  attrInt,
  attrInts,
  checkTensor,
  tensorToFloat32,
  tensorToInts,
} from './onnx-graph.js';
import { ATTR_TYPE } from './onnx-schema.js';

function fail(msg: string): never {
  throw new FormatError(`onnx: ${msg}`);
}

/** Constant folding for the few constant forms torch writes: initializers, Constant, Identity of a constant. */
export class OnnxIndex {
  readonly consumers = new Map<string, GNode[]>();
  readonly producer = new Map<string, GNode>();
  readonly constants = new Map<string, TensorInfo>();
  readonly alias = new Map<string, string>();
  readonly visited = new Set<number>();
  readonly dataNodes: GNode[] = [];

  constructor(
    readonly p: ParsedOnnx,
    limits: OnnxLimits,
  ) {
    for (const [k, v] of p.initializers) this.constants.set(k, v);
    for (const n of p.nodes) {
      for (const o of n.outputs) {
        if (!o) continue;
        if (this.producer.has(o) || p.initializers.has(o) || o === p.input.name) fail(`value '${o}' is produced twice (node '${n.name}')`);
        this.producer.set(o, n);
      }
    }
    // Constants: Constant nodes, and Identity of a constant (torch's deduplicated initializers).
    for (const n of p.nodes) {
      if (n.op === 'Constant') {
        const a = n.attrs.get('value');
        if (a?.t) {
          this.constants.set(n.outputs[0], checkTensor({ ...a.t, name: n.outputs[0] }, 'onnx: Constant', limits));
        } else {
          const ints = n.attrs.get('value_ints') ?? n.attrs.get('value_int');
          if (!ints) fail(`Constant node '${n.name}' has no supported value attribute`);
          const vals = ints!.type === ATTR_TYPE.INTS ? (ints!.ints ?? []) : [ints!.i ?? 0];
          if (vals.length > 64) fail(`Constant node '${n.name}' has ${vals.length} integers`);
          this.constants.set(
            n.outputs[0],
            checkTensor(
              { name: n.outputs[0], dims: ints!.type === ATTR_TYPE.INTS ? [vals.length] : [], dataType: 7, int64Data: vals },
              'onnx: Constant',
              limits,
            ),
          );
        }
        this.visited.add(n.index);
      }
    }
    // Constant subgraphs (Identity of a constant, and the small integer computations torch emits
    // for F.pad's pads: ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast, ...), folded in
    // node order and repeated to a fixed point for odd orders.
    for (let changed = true, rounds = 0; changed && rounds < 64; rounds++) {
      changed = false;
      for (const n of p.nodes) {
        if (this.visited.has(n.index) || !FOLDABLE.has(n.op)) continue;
        const ins = n.inputs.map((i) => (i ? this.constants.get(i) : undefined));
        if (!n.inputs.every((i, k) => !i || ins[k])) continue;
        if (n.op === 'Identity') this.constants.set(n.outputs[0], ins[0]!);
        else {
          if (ins.some((t) => t && t.numel > 4096)) continue;
          const v = foldNode(
            n,
            ins.map((t) => (t ? small(t) : null)),
          );
          this.constants.set(
            n.outputs[0],
            checkTensor(
              {
                name: n.outputs[0],
                dims: v.dims,
                dataType: v.float ? 1 : 7,
                ...(v.float ? { floatData: v.vals } : { int64Data: v.vals }),
              },
              'onnx: folded constant',
              limits,
            ),
          );
        }
        this.visited.add(n.index);
        changed = true;
      }
    }
    // Data-path Identity and Dropout (inference) are transparent.
    for (const n of p.nodes) {
      if (this.visited.has(n.index)) continue;
      if (n.op === 'Identity' || n.op === 'Dropout') {
        for (const o of n.outputs.slice(1)) if (o) fail(`${n.op} node '${n.name}' has a mask output`);
        this.alias.set(n.outputs[0], n.inputs[0]);
        this.visited.add(n.index);
      }
    }
    for (const n of p.nodes) {
      if (this.visited.has(n.index)) continue;
      this.dataNodes.push(n);
      for (const i of n.inputs) {
        if (!i || this.constants.has(i)) continue;
        const v = this.canon(i);
        let list = this.consumers.get(v);
        if (!list) this.consumers.set(v, (list = []));
        list.push(n);
      }
    }
  }

  canon(v: string): string {
    for (let i = 0; i < 10_000 && this.alias.has(v); i++) v = this.alias.get(v)!;
    return v;
  }

  uses(v: string): GNode[] {
    return this.consumers.get(this.canon(v)) ?? [];
  }

  single(v: string, what: string): GNode {
    const u = this.uses(v);
    if (u.length !== 1) fail(`${what}: value '${v}' feeds ${u.length} nodes (${u.map((n) => `${n.op} '${n.name}'`).join(', ') || 'none'}), expected one`);
    return u[0];
  }

  describeUses(v: string): string {
    const u = this.uses(v);
    return u.length ? u.map((n) => `${n.op} '${n.name}'`).join(', ') : 'nothing';
  }

  visit(n: GNode): void {
    if (this.visited.has(n.index)) fail(`node '${n.name}' (${n.op}) is reached twice: the graph is not a ResNet chain`);
    this.visited.add(n.index);
  }

  constant(name: string | undefined, what: string): TensorInfo {
    const c = name ? this.constants.get(name) : undefined;
    if (!c) fail(`${what}: input '${name ?? ''}' is not a constant initializer`);
    return c!;
  }

  isGraphOutput(v: string): boolean {
    return this.p.outputs.some((o) => this.canon(o) === this.canon(v));
  }
}

/** A small constant as plain numbers (for folding shape arithmetic). */
interface Small {
  dims: number[];
  vals: number[];
  float: boolean;
}

const FOLDABLE = new Set(['Identity', 'ConstantOfShape', 'Concat', 'Reshape', 'Slice', 'Transpose', 'Cast', 'Unsqueeze', 'Squeeze']);
const MAX_FOLD = 4096;

function small(t: TensorInfo): Small {
  const float = !(t.dtype === 'I64' || t.dtype === 'I32');
  return { dims: t.dims, vals: float ? [...tensorToFloat32(t)] : tensorToInts(t, MAX_FOLD), float };
}

function stridesOf(dims: number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

function foldNode(n: GNode, ins: (Small | null)[]): Small {
  const bad = (why: string): never => fail(`cannot fold ${n.op} '${n.name}': ${why}`);
  const x = ins[0];
  const numel = (d: number[]) => d.reduce((a, b) => a * b, 1);
  const check = (d: number[]) => {
    if (d.length > 8 || d.some((v) => !Number.isSafeInteger(v) || v < 0) || numel(d) > MAX_FOLD) bad(`shape [${d}]`);
    return d;
  };
  const axisOf = (a: number, rank: number) => {
    const r = a < 0 ? a + rank : a;
    if (r < 0 || r >= Math.max(rank, 1)) bad(`axis ${a}`);
    return r;
  };
  switch (n.op) {
    case 'ConstantOfShape': {
      const dims = check(x!.vals.slice());
      const t = n.attrs.get('value')?.t;
      let v = 0,
        float = true;
      if (t) {
        const info = checkTensor({ ...t, name: 'value' }, 'onnx: ConstantOfShape value', DEFAULT_ONNX_LIMITS);
        if (info.numel !== 1) bad('value must have one element');
        float = !(info.dtype === 'I64' || info.dtype === 'I32');
        v = float ? tensorToFloat32(info)[0] : tensorToInts(info)[0];
      }
      return { dims, vals: new Array<number>(numel(dims)).fill(v), float };
    }
    case 'Concat': {
      const parts = ins.filter((t): t is Small => t !== null);
      if (!parts.length || parts.some((t) => t.dims.length !== 1)) bad('only 1-D inputs are supported');
      const vals = parts.flatMap((t) => t.vals);
      return { dims: check([vals.length]), vals, float: parts.some((t) => t.float) };
    }
    case 'Reshape': {
      const want = ins[1]!.vals.map((d, i) => (d === 0 ? x!.dims[i] : d));
      const known = want.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const dims = want.map((d) => (d === -1 ? (known ? x!.vals.length / known : 0) : d));
      if (numel(check(dims)) !== x!.vals.length) bad(`cannot reshape [${x!.dims}] to [${ins[1]!.vals}]`);
      return { dims, vals: x!.vals, float: x!.float };
    }
    case 'Cast': {
      const to = attrInt(n, 'to', 1);
      const float = to === 1 || to === 10 || to === 11 || to === 16;
      return { dims: x!.dims, vals: float ? x!.vals : x!.vals.map((v) => Math.trunc(v)), float };
    }
    case 'Transpose': {
      const r = x!.dims.length;
      const perm = attrInts(n, 'perm', [...Array(r).keys()].reverse())!;
      if (perm.length !== r) bad('perm length');
      const dims = perm.map((p) => x!.dims[axisOf(p, r)]);
      const si = stridesOf(x!.dims),
        so = stridesOf(dims);
      const vals = new Array<number>(x!.vals.length);
      for (let o = 0; o < vals.length; o++) {
        let src = 0;
        for (let k = 0; k < r; k++) src += (Math.floor(o / so[k]) % dims[k]) * si[perm[k]];
        vals[o] = x!.vals[src];
      }
      return { dims, vals, float: x!.float };
    }
    case 'Slice': {
      const r = x!.dims.length;
      const starts = ins[1]!.vals,
        ends = ins[2]!.vals;
      const axes = ins[3] ? ins[3].vals.map((a) => axisOf(a, r)) : starts.map((_, i) => i);
      const steps = ins[4] ? ins[4].vals : starts.map(() => 1);
      const lo = x!.dims.map(() => 0),
        step = x!.dims.map(() => 1),
        cnt = [...x!.dims];
      axes.forEach((a, i) => {
        const d = x!.dims[a],
          st = steps[i];
        if (!st) bad('step 0');
        const clamp = (v: number, minV: number, maxV: number) => Math.min(Math.max(v, minV), maxV);
        let s0 = starts[i] < 0 ? starts[i] + d : starts[i],
          e0 = ends[i] < 0 ? ends[i] + d : ends[i];
        if (st > 0) {
          s0 = clamp(s0, 0, d);
          e0 = clamp(e0, 0, d);
          cnt[a] = Math.max(0, Math.ceil((e0 - s0) / st));
        } else {
          s0 = clamp(s0, -1, d - 1);
          e0 = clamp(e0, -1, d - 1);
          cnt[a] = Math.max(0, Math.ceil((e0 - s0) / st));
        }
        lo[a] = s0;
        step[a] = st;
      });
      const si = stridesOf(x!.dims),
        so = stridesOf(cnt);
      const vals = new Array<number>(numel(check(cnt)));
      for (let o = 0; o < vals.length; o++) {
        let src = 0;
        for (let k = 0; k < r; k++) src += (lo[k] + (Math.floor(o / so[k]) % cnt[k]) * step[k]) * si[k];
        vals[o] = x!.vals[src];
      }
      return { dims: cnt, vals, float: x!.float };
    }
    case 'Unsqueeze':
    case 'Squeeze': {
      const axesIn = ins[1] ? ins[1].vals : attrInts(n, 'axes', null);
      let dims = [...x!.dims];
      if (n.op === 'Squeeze') {
        const ax = (axesIn ?? dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((a) => axisOf(a, dims.length));
        dims = dims.filter((_, i) => !ax.includes(i));
      } else {
        const outR = dims.length + (axesIn?.length ?? 0);
        for (const a of (axesIn ?? []).map((v) => (v < 0 ? v + outR : v)).sort((p, q) => p - q)) dims.splice(a, 0, 1);
      }
      return { dims: check(dims), vals: x!.vals, float: x!.float };
    }
  }
  return bad('unsupported');
}
