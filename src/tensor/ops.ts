// The op table: every differentiable primitive, its forward (a backend kernel) and its
// backward rule, side by side. Backward rules run under noGrad and return fresh tensors.
// Ops never touch element values: they pass storage handles to backend kernels, and values
// cross only where a tensor is made from host numbers (tensor, randn, dropout's mask).
import type { BinaryOp, Conv2dParams, Pool2dParams, UnaryOp } from '../backend/backend.js';
import { ResnetError, ShapeError } from '../base/errors.js';
import { broadcastShapes, checkShape, convOutSize, normAxis, numel, shapeEq, shapeStr, toPair, type Shape } from '../base/shape.js';
import { globalRng, type RNG } from '../base/rng.js';
import { Tensor, isGradEnabled, record } from './tensor.js';

// ---------------------------------------------------------------------------- creation

export function tensor(values: ArrayLike<number>, shape?: Shape): Tensor {
  const sh = shape ?? [values.length];
  checkShape(sh);
  if (numel(sh) !== values.length) throw new ShapeError(`${values.length} values cannot have shape ${shapeStr(sh)}`);
  return Tensor.fromArray(values, sh);
}

export function zeros(shape: Shape): Tensor {
  return Tensor.empty(shape);
}

export function full(shape: Shape, value: number): Tensor {
  const t = Tensor.empty(shape);
  t.backend.fill(t.storage, value);
  return t;
}

export function ones(shape: Shape): Tensor {
  return full(shape, 1);
}

// The seeded RNG runs on the host (same numbers on every backend); the values are uploaded.
export function randn(shape: Shape, rng: RNG = globalRng, std = 1, mean = 0): Tensor {
  const d = new Float32Array(numel(shape));
  for (let i = 0; i < d.length; i++) d[i] = mean + std * rng.normal();
  return Tensor.fromArray(d, shape);
}

export function rand(shape: Shape, rng: RNG = globalRng, lo = 0, hi = 1): Tensor {
  const d = new Float32Array(numel(shape));
  for (let i = 0; i < d.length; i++) d[i] = rng.uniform(lo, hi);
  return Tensor.fromArray(d, shape);
}

// ---------------------------------------------------------------------------- shape ops

/** A copy with a new shape (one dimension may be -1). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const sh = [...shape];
  const neg = sh.indexOf(-1);
  if (neg >= 0) {
    const rest = sh.reduce((a, d, i) => (i === neg ? a : a * d), 1);
    if (rest === 0 || x.size % rest !== 0) throw new ShapeError(`cannot reshape ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
    sh[neg] = x.size / rest;
  }
  if (numel(sh) !== x.size) throw new ShapeError(`cannot reshape ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
  const out = Tensor.empty(sh, x.backend);
  x.backend.copy(x.storage, out.storage);
  return record(out, 'reshape', [x], (g) => [reshape(g, x.shape)]);
}

/** Flatten dimensions startDim..endDim into one (torch.flatten). */
export function flatten(x: Tensor, startDim = 1, endDim = -1): Tensor {
  const s = normAxis(startDim, x.rank),
    e = normAxis(endDim, x.rank);
  const sh = [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, sh);
}

/** Transpose of a 2-D tensor. */
export function transpose(x: Tensor): Tensor {
  if (x.rank !== 2) throw new ShapeError(`transpose needs a 2-D tensor, got ${shapeStr(x.shape)}`);
  const [r, c] = x.shape;
  const out = Tensor.empty([c, r], x.backend);
  x.backend.transpose2d(x.storage, out.storage, r, c);
  return record(out, 'transpose', [x], (g) => [transpose(g)]);
}

// ---------------------------------------------------------------------------- elementwise

export function unary(op: UnaryOp, x: Tensor): Tensor {
  const out = Tensor.empty(x.shape, x.backend);
  x.backend.unary(op, x.storage, out.storage);
  return record(out, op, [x], (g) => {
    switch (op) {
      case 'neg':
        return [unary('neg', g)];
      case 'exp':
        return [mul(g, out)];
      case 'log':
        return [div(g, x)];
      case 'sqrt':
        return [div(g, mulScalar(out, 2))];
      case 'relu': {
        const dx = Tensor.empty(x.shape, x.backend);
        x.backend.reluBackward(g.storage, out.storage, dx.storage);
        return [dx];
      }
      case 'abs':
      case 'sigmoid':
      case 'tanh': {
        const dx = Tensor.empty(x.shape, x.backend);
        x.backend.unaryBackward(op, g.storage, x.storage, out.storage, dx.storage);
        return [dx];
      }
    }
  });
}

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const abs = (x: Tensor) => unary('abs', x);
export const relu = (x: Tensor) => unary('relu', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const tanh = (x: Tensor) => unary('tanh', x);

function padTo(shape: Shape, rank: number): number[] {
  return [...new Array<number>(rank - shape.length).fill(1), ...shape];
}

/** Sum g (shape outShape) down to `shape` (the inverse of broadcasting). */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (shapeEq(g.shape, shape)) return g.detach();
  const rank = g.rank;
  const target = padTo(shape, rank);
  const out = Tensor.empty(shape, g.backend);
  g.backend.sumTo(g.storage, g.shape, out.storage, target);
  return out;
}

export function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape);
  const out = Tensor.empty(shape, a.backend);
  const aShape = padTo(a.shape, shape.length);
  a.backend.binary(op, a.storage, aShape, b.storage, padTo(b.shape, shape.length), out.storage, shape);
  return record(out, op, [a, b], (g) => {
    const need = (t: Tensor) => t.requiresGrad;
    switch (op) {
      case 'add':
        return [need(a) ? sumToShape(g, a.shape) : null, need(b) ? sumToShape(g, b.shape) : null];
      case 'sub':
        return [need(a) ? sumToShape(g, a.shape) : null, need(b) ? sumToShape(unary('neg', g), b.shape) : null];
      case 'mul':
        return [need(a) ? sumToShape(binary('mul', g, b), a.shape) : null, need(b) ? sumToShape(binary('mul', g, a), b.shape) : null];
      case 'div':
        return [need(a) ? sumToShape(binary('div', g, b), a.shape) : null, need(b) ? sumToShape(neg(binary('div', binary('mul', g, out), b)), b.shape) : null];
      case 'max':
      case 'min': {
        // The gradient goes to the selected operand (a on ties, as torch.maximum splits evenly;
        // we pick a for simplicity and document it).
        const ga = Tensor.empty(shape, a.backend),
          gb = Tensor.empty(shape, a.backend);
        a.backend.maxMinBackward(g.storage, a.storage, aShape, out.storage, shape, ga.storage, gb.storage);
        const res = [sumToShape(ga, a.shape), sumToShape(gb, b.shape)];
        for (const t of [ga, gb]) t.dispose(); // sumToShape always returns a new tensor
        return res;
      }
    }
  });
}

/** Sum of [N, C, ...] over every axis but the channel axis: shape [C]. */
export function channelSum(g: Tensor): Tensor {
  const C = g.shape[1];
  const out = Tensor.empty([C], g.backend);
  g.backend.sumTo(g.storage, [g.shape[0], C, g.size / (g.shape[0] * C)], out.storage, [1, C, 1]);
  return out;
}

function zerosLike(t: Tensor): Tensor {
  return Tensor.empty(t.shape, t.backend);
}

export const add = (a: Tensor, b: Tensor) => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor) => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor) => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor) => binary('div', a, b);
export const maximum = (a: Tensor, b: Tensor) => binary('max', a, b);
export const minimum = (a: Tensor, b: Tensor) => binary('min', a, b);

/** x * alpha + beta. */
export function affineScalar(x: Tensor, alpha: number, beta: number): Tensor {
  const out = Tensor.empty(x.shape, x.backend);
  x.backend.affine(x.storage, out.storage, alpha, beta);
  return record(out, 'affine', [x], (g) => [affineScalar(g, alpha, 0)]);
}
export const mulScalar = (x: Tensor, s: number) => affineScalar(x, s, 0);
export const addScalar = (x: Tensor, s: number) => affineScalar(x, 1, s);

// ---------------------------------------------------------------------------- reductions

/** Sum over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: number | number[], keepDim = false): Tensor {
  const ax = axes === undefined ? x.shape.map((_, i) => i) : (Array.isArray(axes) ? axes : [axes]).map((a) => normAxis(a, x.rank));
  const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const buf = x.backend.alloc(numel(kept));
  x.backend.sumTo(x.storage, x.shape, buf, kept);
  const finalShape = keepDim ? kept : x.shape.filter((_, i) => !ax.includes(i));
  const res = new Tensor(buf, finalShape, x.backend);
  return record(res, 'sum', [x], (g) => {
    const gk = new Tensor(g.backend.alloc(g.size), kept, g.backend);
    g.backend.copy(g.storage, gk.storage);
    const z = zerosLike(x);
    const r = add(z, gk);
    z.dispose();
    gk.dispose();
    return [r];
  });
}

export function mean(x: Tensor, axes?: number | number[], keepDim = false): Tensor {
  const s = sum(x, axes, keepDim);
  const r = mulScalar(s, s.size / x.size);
  return r;
}

// ---------------------------------------------------------------------------- linear algebra

/** a[M,K] @ b[K,N]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new ShapeError(`matmul needs [M,K] @ [K,N], got ${shapeStr(a.shape)} @ ${shapeStr(b.shape)}`);
  }
  const [M, K] = a.shape,
    N = b.shape[1];
  const out = Tensor.empty([M, N], a.backend);
  a.backend.gemm(false, false, M, N, K, a.storage, b.storage, out.storage, false);
  return record(out, 'matmul', [a, b], (g) => {
    let da: Tensor | null = null,
      db: Tensor | null = null;
    if (a.requiresGrad) {
      da = Tensor.empty([M, K], a.backend);
      a.backend.gemm(false, true, M, K, N, g.storage, b.storage, da.storage, false);
    }
    if (b.requiresGrad) {
      db = Tensor.empty([K, N], a.backend);
      a.backend.gemm(true, false, K, N, M, a.storage, g.storage, db.storage, false);
    }
    return [da, db];
  });
}

/** x[N,in] @ w[out,in]^T + b[out] (torch.nn.functional.linear). */
export function linear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  if (x.rank !== 2 || w.rank !== 2 || x.shape[1] !== w.shape[1]) {
    throw new ShapeError(`linear expects input [N, ${w.shape[1]}], got ${shapeStr(x.shape)}`);
  }
  const [N, I] = x.shape,
    O = w.shape[0];
  const out = Tensor.empty([N, O], x.backend);
  x.backend.gemm(false, true, N, O, I, x.storage, w.storage, out.storage, false);
  if (b) x.backend.binary('add', out.storage, [N, O], b.storage, [1, O], out.storage, [N, O]);
  const inputs = b ? [x, w, b] : [x, w];
  return record(out, 'linear', inputs, (g) => {
    let dx: Tensor | null = null,
      dw: Tensor | null = null,
      db: Tensor | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty([N, I], x.backend);
      x.backend.gemm(false, false, N, I, O, g.storage, w.storage, dx.storage, false);
    }
    if (w.requiresGrad) {
      dw = Tensor.empty([O, I], x.backend);
      x.backend.gemm(true, false, O, I, N, g.storage, x.storage, dw.storage, false);
    }
    if (b && b.requiresGrad) db = sumToShape(g, [O]);
    return b ? [dx, dw, db] : [dx, dw];
  });
}

// ---------------------------------------------------------------------------- convolution

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

export function conv2dParams(xShape: Shape, wShape: Shape, o: Conv2dOptions = {}): Conv2dParams {
  if (xShape.length !== 4) throw new ShapeError(`conv2d expects a 4-D input [N, C, H, W], got ${shapeStr(xShape)}`);
  const [N, C, H, W] = xShape;
  const [K, Cg, R, S] = wShape;
  const groups = o.groups ?? 1;
  const [strideH, strideW] = toPair(o.stride, 1);
  const [padH, padW] = toPair(o.padding, 0);
  const [dilH, dilW] = toPair(o.dilation, 1);
  if (C !== Cg * groups) {
    throw new ShapeError(`conv2d expects ${Cg * groups} input channels, got ${C} (input ${shapeStr(xShape)}, weight ${shapeStr(wShape)}, groups ${groups})`);
  }
  if (K % groups !== 0) throw new ShapeError(`conv2d out channels ${K} not divisible by groups ${groups}`);
  const OH = convOutSize(H, R, strideH, padH, dilH),
    OW = convOutSize(W, S, strideW, padW, dilW);
  if (OH <= 0 || OW <= 0) {
    throw new ShapeError(`conv2d input ${shapeStr(xShape)} is too small for a ${R}x${S} kernel (output would be ${OH}x${OW})`);
  }
  return { N, C, H, W, K, R, S, strideH, strideW, padH, padW, dilH, dilW, groups, OH, OW };
}

export function conv2d(x: Tensor, w: Tensor, b: Tensor | null, o: Conv2dOptions = {}): Tensor {
  const p = conv2dParams(x.shape, w.shape, o);
  const out = Tensor.empty([p.N, p.K, p.OH, p.OW], x.backend);
  x.backend.conv2d(x.storage, w.storage, b ? b.storage : null, out.storage, p);
  const inputs = b ? [x, w, b] : [x, w];
  return record(out, 'conv2d', inputs, (g) => {
    let dx: Tensor | null = null,
      dw: Tensor | null = null,
      db: Tensor | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty(x.shape, x.backend);
      x.backend.conv2dBackwardData(g.storage, w.storage, dx.storage, p);
    }
    if (w.requiresGrad) {
      dw = Tensor.empty(w.shape, x.backend);
      x.backend.conv2dBackwardFilter(x.storage, g.storage, dw.storage, p);
    }
    if (b && b.requiresGrad) {
      db = channelSum(g);
    }
    return b ? [dx, dw, db] : [dx, dw];
  });
}

/**
 * Inference only (no gradient): act(conv2d(x, w) + b + residual), act = ReLU when `relu`, in one
 * backend call — for convolutions with BatchNorm folded into w and b (models/fused.ts).
 * `constWeights`: w and b will not change while they live (the backend may cache transforms).
 */
export function conv2dFused(
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  o: Conv2dOptions,
  act: { relu?: boolean; residual?: Tensor | null; constWeights?: boolean | 'owned' } = {},
): Tensor {
  if (isGradEnabled() && [x, w, b, act.residual].some((t) => t?.requiresGrad)) {
    throw new ResnetError('conv2dFused is inference-only: call it under noGrad() with tensors that do not require grad');
  }
  const p = conv2dParams(x.shape, w.shape, o);
  const r = act.residual ?? null;
  if (r && !shapeEq(r.shape, [p.N, p.K, p.OH, p.OW])) {
    throw new ShapeError(`conv2dFused residual has shape ${shapeStr(r.shape)}, the output ${shapeStr([p.N, p.K, p.OH, p.OW])}`);
  }
  const out = Tensor.empty([p.N, p.K, p.OH, p.OW], x.backend);
  x.backend.conv2dFused(x.storage, w.storage, b ? b.storage : null, out.storage, p, act.relu ?? false, r ? r.storage : null, act.constWeights ?? false);
  return out;
}

// ---------------------------------------------------------------------------- batch norm

/**
 * Batch norm over [N, C, ...]. In training mode it normalises with the batch statistics and
 * updates runningMean/runningVar in place (unbiased variance, as PyTorch); in eval mode it uses
 * the running statistics. momentum null means a cumulative average (numBatchesTracked based).
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  training: boolean,
  momentum: number,
  eps: number,
): Tensor {
  if (x.rank < 2) throw new ShapeError(`batch norm expects [N, C, ...], got ${shapeStr(x.shape)}`);
  const N = x.shape[0],
    C = x.shape[1],
    HW = x.size / (N * C);
  if (weight && weight.size !== C) throw new ShapeError(`batch norm has ${weight.size} channels, input has ${C} (${shapeStr(x.shape)})`);
  if (runningMean && runningMean.size !== C) throw new ShapeError(`batch norm has ${runningMean.size} channels, input has ${C} (${shapeStr(x.shape)})`);
  const be = x.backend;
  const out = Tensor.empty(x.shape, be);
  if (!training) {
    if (!runningMean || !runningVar) throw new ResnetError('batch norm in eval mode needs running statistics');
    be.batchNormEval(x.storage, weight?.storage ?? null, bias?.storage ?? null, runningMean.storage, runningVar.storage, out.storage, N, C, HW, eps);
    const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
    return record(out, 'batchNormEval', inputs, (g) => {
      const dx = x.requiresGrad ? Tensor.empty(x.shape, be) : null;
      const dg = weight?.requiresGrad ? Tensor.empty([C], be) : null;
      be.batchNormEvalBackward(
        g.storage,
        x.storage,
        weight?.storage ?? null,
        runningMean.storage,
        runningVar.storage,
        dx?.storage ?? null,
        dg?.storage ?? null,
        N,
        C,
        HW,
        eps,
      );
      const grads: (Tensor | null)[] = [dx];
      if (weight) grads.push(dg);
      if (bias) grads.push(bias.requiresGrad ? channelSum(g) : null);
      return grads;
    });
  }
  if (N * HW <= 1) throw new ShapeError(`batch norm in training mode needs more than 1 value per channel, got input ${shapeStr(x.shape)}`);
  const saveMean = be.alloc(C),
    saveInvStd = be.alloc(C),
    batchVar = be.alloc(C);
  be.batchNormTrain(x.storage, weight?.storage ?? null, bias?.storage ?? null, out.storage, saveMean, saveInvStd, batchVar, N, C, HW, eps);
  if (runningMean && runningVar) be.batchNormUpdateStats(runningMean.storage, runningVar.storage, saveMean, batchVar, momentum, N * HW);
  be.free(batchVar);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const saved = new Tensor(saveMean, [C], be),
    savedInv = new Tensor(saveInvStd, [C], be);
  return record(
    out,
    'batchNorm',
    inputs,
    (g) => {
      const dx = Tensor.empty(x.shape, be);
      const dgamma = weight ? Tensor.empty([C], be) : null;
      const dbeta = bias ? Tensor.empty([C], be) : null;
      be.batchNormTrainBackward(
        g.storage,
        x.storage,
        weight?.storage ?? null,
        saved.storage,
        savedInv.storage,
        dx.storage,
        dgamma?.storage ?? null,
        dbeta?.storage ?? null,
        N,
        C,
        HW,
      );
      const grads: (Tensor | null)[] = [x.requiresGrad ? dx : (dx.dispose(), null)];
      if (weight) grads.push(dgamma);
      if (bias) grads.push(dbeta);
      return grads;
    },
    [saved, savedInv],
  );
}

// ---------------------------------------------------------------------------- pooling

export interface Pool2dOptions {
  kernelSize: number | [number, number];
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  ceilMode?: boolean;
  countIncludePad?: boolean;
}

function poolParams(x: Tensor, o: Pool2dOptions, kind: string): Pool2dParams {
  if (x.rank !== 4) throw new ShapeError(`${kind} expects [N, C, H, W], got ${shapeStr(x.shape)}`);
  const [N, C, H, W] = x.shape;
  const [kH, kW] = toPair(o.kernelSize, 1);
  const [sH, sW] = o.stride === undefined ? [kH, kW] : toPair(o.stride, 1);
  const [pH, pW] = toPair(o.padding, 0);
  const [dH, dW] = toPair(o.dilation, 1);
  if (pH * 2 > kH || pW * 2 > kW) throw new ShapeError(`${kind}: padding should be at most half the kernel size`);
  const OH = convOutSize(H, kH, sH, pH, dH, o.ceilMode ?? false);
  const OW = convOutSize(W, kW, sW, pW, dW, o.ceilMode ?? false);
  if (OH <= 0 || OW <= 0) throw new ShapeError(`${kind}: input ${shapeStr(x.shape)} is too small for kernel ${kH}x${kW}`);
  return { N, C, H, W, kH, kW, sH, sW, pH, pW, dH, dW, OH, OW, countIncludePad: o.countIncludePad ?? true };
}

export function maxPool2d(x: Tensor, o: Pool2dOptions): Tensor {
  const p = poolParams(x, o, 'max pool');
  const out = Tensor.empty([p.N, p.C, p.OH, p.OW], x.backend);
  x.backend.maxPool2d(x.storage, out.storage, p);
  return record(out, 'maxPool2d', [x], (g) => {
    const dx = Tensor.empty(x.shape, x.backend);
    x.backend.maxPool2dBackward(x.storage, g.storage, dx.storage, p);
    return [dx];
  });
}

export function avgPool2d(x: Tensor, o: Pool2dOptions): Tensor {
  const p = poolParams(x, { ...o, dilation: 1 }, 'avg pool');
  const out = Tensor.empty([p.N, p.C, p.OH, p.OW], x.backend);
  x.backend.avgPool2d(x.storage, out.storage, p);
  return record(out, 'avgPool2d', [x], (g) => {
    const dx = Tensor.empty(x.shape, x.backend);
    x.backend.avgPool2dBackward(g.storage, dx.storage, p);
    return [dx];
  });
}

export function adaptiveAvgPool2d(x: Tensor, outputSize: number | [number, number]): Tensor {
  if (x.rank !== 4) throw new ShapeError(`adaptive avg pool expects [N, C, H, W], got ${shapeStr(x.shape)}`);
  const [N, C, H, W] = x.shape;
  const [OH, OW] = toPair(outputSize, 1);
  const out = Tensor.empty([N, C, OH, OW], x.backend);
  x.backend.adaptiveAvgPool2d(x.storage, out.storage, N, C, H, W, OH, OW);
  return record(out, 'adaptiveAvgPool2d', [x], (g) => {
    const dx = Tensor.empty(x.shape, x.backend);
    x.backend.adaptiveAvgPool2dBackward(g.storage, dx.storage, N, C, H, W, OH, OW);
    return [dx];
  });
}

// ---------------------------------------------------------------------------- softmax & losses

function rowsCols(x: Tensor, what: string): [number, number] {
  if (x.rank !== 2) throw new ShapeError(`${what} expects [N, C], got ${shapeStr(x.shape)}`);
  return [x.shape[0], x.shape[1]];
}

export function softmax(x: Tensor): Tensor {
  const [R, Cc] = rowsCols(x, 'softmax');
  const out = Tensor.empty(x.shape, x.backend);
  x.backend.softmax(x.storage, out.storage, R, Cc, false);
  return record(out, 'softmax', [x], (g) => {
    const dx = Tensor.empty(x.shape, x.backend);
    x.backend.softmaxBackward(g.storage, out.storage, dx.storage, R, Cc, false);
    return [dx];
  });
}

export function logSoftmax(x: Tensor): Tensor {
  const [R, Cc] = rowsCols(x, 'logSoftmax');
  const out = Tensor.empty(x.shape, x.backend);
  x.backend.softmax(x.storage, out.storage, R, Cc, true);
  return record(out, 'logSoftmax', [x], (g) => {
    const dx = Tensor.empty(x.shape, x.backend);
    x.backend.softmaxBackward(g.storage, out.storage, dx.storage, R, Cc, true);
    return [dx];
  });
}

/** Mean cross-entropy of logits [N, C] against class indices, with optional label smoothing. */
export function crossEntropy(logits: Tensor, targets: ArrayLike<number>, labelSmoothing = 0): Tensor {
  const [N, C] = rowsCols(logits, 'crossEntropy');
  if (targets.length !== N) throw new ShapeError(`crossEntropy got ${targets.length} targets for ${N} rows`);
  const t = Int32Array.from(targets);
  for (let i = 0; i < N; i++) {
    if (!(t[i] >= 0 && t[i] < C) || t[i] !== targets[i]) throw new ShapeError(`target ${targets[i]} at row ${i} is not a class index in [0, ${C})`);
  }
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new ResnetError(`label smoothing must be in [0, 1], got ${labelSmoothing}`);
  const be = logits.backend;
  const probs = be.alloc(N * C);
  const out = Tensor.empty([], be);
  be.softmaxCrossEntropy(logits.storage, t, probs, out.storage, N, C, labelSmoothing);
  const savedProbs = new Tensor(probs, [N, C], be);
  return record(
    out,
    'crossEntropy',
    [logits],
    (g) => {
      const dx = Tensor.empty([N, C], be);
      be.softmaxCrossEntropyBackward(savedProbs.storage, t, g.storage, dx.storage, N, C, labelSmoothing);
      return [dx];
    },
    [savedProbs],
  );
}

// ---------------------------------------------------------------------------- misc

/** Inverted dropout: zero with probability p, scale survivors by 1/(1-p). Identity when !training. */
export function dropout(x: Tensor, p: number, training: boolean, rng: RNG = globalRng): Tensor {
  if (!(p >= 0 && p < 1)) {
    if (p === 1 && training) return mulScalar(x, 0);
    if (!(p >= 0 && p <= 1)) throw new ResnetError(`dropout probability must be in [0, 1], got ${p}`);
  }
  if (!training || p === 0) return affineScalar(x, 1, 0);
  const m = new Float32Array(x.size),
    k = 1 / (1 - p);
  for (let i = 0; i < m.length; i++) m[i] = rng.random() < p ? 0 : k;
  const mask = Tensor.fromArray(m, x.shape, x.backend);
  const out = mul(x, mask);
  return out;
}

/**
 * He et al. 2015's option-A shortcut for the CIFAR ResNets: take every `stride`-th pixel and
 * zero-pad the channel axis with `padBefore` and `padAfter` empty channels.
 */
export function subsamplePadChannels(x: Tensor, stride: number, padBefore: number, padAfter: number): Tensor {
  if (x.rank !== 4) throw new ShapeError(`shortcut expects [N, C, H, W], got ${shapeStr(x.shape)}`);
  const [N, C, H, W] = x.shape;
  const OH = Math.ceil(H / stride),
    OW = Math.ceil(W / stride),
    OC = C + padBefore + padAfter;
  const out = Tensor.empty([N, OC, OH, OW], x.backend);
  x.backend.subsamplePadChannels(x.storage, out.storage, N, C, H, W, stride, padBefore, padAfter, false);
  return record(out, 'subsamplePadChannels', [x], (g) => {
    const dx = Tensor.empty(x.shape, x.backend);
    x.backend.subsamplePadChannels(dx.storage, g.storage, N, C, H, W, stride, padBefore, padAfter, true);
    return [dx];
  });
}

/** Index of the (first) maximum along the last axis of [N, C], read back synchronously. */
export function argmax(x: Tensor): Int32Array {
  const [R, Cc] = rowsCols(x, 'argmax');
  const idx = Tensor.empty([R], x.backend);
  x.backend.argmax(x.storage, idx.storage, R, Cc);
  const out = Int32Array.from(idx.dataSync());
  idx.dispose();
  return out;
}
