// Weight initialisers, as torch.nn.init. fan_in/fan_out follow PyTorch: for a conv weight
// [K, C/g, R, S], fan_in = C/g*R*S and fan_out = K*R*S (groups do not divide fan_out).
import { globalRng, type RNG } from '../base/rng.js';
import type { Tensor } from '../tensor/tensor.js';

export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  const s = t.shape;
  if (s.length < 2) return { fanIn: s[0] ?? 1, fanOut: s[0] ?? 1 };
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: s[1] * receptive, fanOut: s[0] * receptive };
}

let randomInit = true;

/**
 * Run `build` with the random initialisers (uniform_, normal_ and those built on them) turned
 * off: their tensors keep the zeros they were allocated with, and the RNG is not advanced.
 * Constant inits (BatchNorm's 1s) still run: they cost a fill. For models whose every parameter
 * is about to be loaded: a ResNet-50's random init is 1.2-2 s of host RNG (measured).
 */
export function withoutRandomInit<T>(build: () => T): T {
  const prev = randomInit;
  randomInit = false;
  try {
    return build();
  } finally {
    randomInit = prev;
  }
}

// The seeded RNG runs on the host (the same numbers on every backend); values are uploaded.
export function uniform_(t: Tensor, lo: number, hi: number, rng: RNG = globalRng): Tensor {
  if (!randomInit) return t;
  const d = new Float32Array(t.size);
  for (let i = 0; i < d.length; i++) d[i] = rng.uniform(lo, hi);
  return t.write(d);
}

export function normal_(t: Tensor, mean: number, std: number, rng: RNG = globalRng): Tensor {
  if (!randomInit) return t;
  const d = new Float32Array(t.size);
  for (let i = 0; i < d.length; i++) d[i] = mean + std * rng.normal();
  return t.write(d);
}

export function constant_(t: Tensor, v: number): Tensor {
  t.backend.fill(t.storage, v);
  return t;
}

/** He et al. 2015 normal init; torchvision uses mode 'fanOut' with ReLU gain sqrt(2). */
export function kaimingNormal_(t: Tensor, mode: 'fanIn' | 'fanOut' = 'fanIn', gain = Math.SQRT2, rng: RNG = globalRng): Tensor {
  const f = fans(t);
  const std = gain / Math.sqrt(mode === 'fanIn' ? f.fanIn : f.fanOut);
  return normal_(t, 0, std, rng);
}

/** kaiming_uniform_ with a = sqrt(5): PyTorch's default for Linear and Conv weights (bound 1/sqrt(fan_in)). */
export function defaultWeight_(t: Tensor, rng: RNG = globalRng): Tensor {
  const b = 1 / Math.sqrt(fans(t).fanIn);
  return uniform_(t, -b, b, rng);
}

/** PyTorch's default bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of the layer's weight. */
export function defaultBias_(bias: Tensor, weight: Tensor, rng: RNG = globalRng): Tensor {
  const fi = fans(weight).fanIn;
  const b = fi > 0 ? 1 / Math.sqrt(fi) : 0;
  return uniform_(bias, -b, b, rng);
}

/** Glorot & Bengio 2010 uniform init, as d2l uses: bound sqrt(6/(fan_in+fan_out)). */
export function xavierUniform_(t: Tensor, gain = 1, rng: RNG = globalRng): Tensor {
  const f = fans(t);
  const b = gain * Math.sqrt(6 / (f.fanIn + f.fanOut));
  return uniform_(t, -b, b, rng);
}
