// WebGPU kernels: subsamplePadChannels (He et al.'s option-A shortcut). The ref backend's kernel
// of the same name is the oracle (src/backend/ref/ref.ts).
import { Uniforms, type GpuRuntime, type GpuStorage } from '../runtime.js';
import { grid } from './eltwise.js';

export function subsamplePadChannels(
  rt: GpuRuntime,
  x: GpuStorage,
  y: GpuStorage,
  N: number,
  C: number,
  H: number,
  W: number,
  stride: number,
  padBefore: number,
  padAfter: number,
  backward: boolean,
): void {
  const OH = Math.ceil(H / stride),
    OW = Math.ceil(W / stride),
    OC = C + padBefore + padAfter;
  // one thread per kept pixel (N*C*OH*OW); the padded channels / skipped pixels stay as the
  // caller zero-filled them
  const n = N * C * OH * OW;
  const [gx, gy] = grid(rt, Math.ceil(n / 256));
  rt.dispatch({
    key: `subsample-pad-channels-${backward ? 'backward' : 'forward'}`,
    code: () => `
struct U { n: u32, gx: u32, C: u32, H: u32, W: u32, OH: u32, OW: u32, OC: u32, stride: u32, before: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, ${backward ? 'read_write' : 'read'}> x: array<f32>;
@group(0) @binding(2) var<storage, ${backward ? 'read' : 'read_write'}> y: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * u.gx + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  let w = i % u.OW;
  let h = (i / u.OW) % u.OH;
  let nc = i / (u.OW * u.OH); // n * C + c
  let c = nc % u.C;
  let n = nc / u.C;
  let xi = (nc * u.H + h * u.stride) * u.W + w * u.stride;
  let yi = ((n * u.OC + c + u.before) * u.OH + h) * u.OW + w;
  ${backward ? 'x[xi] = y[yi];' : 'y[yi] = x[xi];'}
}`,
    uniforms: new Uniforms().u32(n, gx, C, H, W, OH, OW, OC, stride, padBefore),
    buffers: [x, y],
    groups: [gx, gy],
  });
}
