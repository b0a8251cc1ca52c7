// Node: WebGPU through the optional npm package `webgpu` (Dawn's Node bindings, prebuilt). Only the
// Node entry imports this file, for its side effect of registering the provider, so a browser build
// never sees the package. Dawn is asked for its default backend first (Vulkan/Metal/D3D on a real
// GPU); where that finds no adapter it falls back to Dawn's OpenGL backend on EGL without a display,
// which on a machine without a GPU is Mesa's llvmpipe: correct, slow, and what the tests use.
import { setGpuProvider } from './device.js';
import { ConfigError } from '../../base/errors.js';

interface DawnModule {
  create(flags: string[]): GPU;
  globals: object;
}

let made: GPU | null = null;

setGpuProvider(async () => {
  if (made) return made;
  let m: DawnModule;
  try {
    m = (await import('webgpu')) as DawnModule;
  } catch (e) {
    throw new ConfigError(
      `webgpu backend: Node has no WebGPU without the optional package 'webgpu' (npm install webgpu): ${(e as Error).message.split('\n')[0]}`,
    );
  }
  Object.assign(globalThis, m.globals); // GPUBufferUsage, GPUMapMode, ... as in a browser
  const flags = (process.env.RESNET_WEBGPU_FLAGS ?? '').split(',').filter(Boolean);
  const gpu = m.create(flags);
  if (flags.length > 0 || (await gpu.requestAdapter())) return (made = gpu);
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const gl = m.create(['backend=opengl']);
  const wrapped: GPU = {
    requestAdapter: (o?: GPURequestAdapterOptions) => gl.requestAdapter({ ...o, featureLevel: 'compatibility' } as GPURequestAdapterOptions),
    getPreferredCanvasFormat: () => gl.getPreferredCanvasFormat(),
    wgslLanguageFeatures: gl.wgslLanguageFeatures,
    __brand: 'GPU',
  } as unknown as GPU;
  return (made = wrapped);
});
