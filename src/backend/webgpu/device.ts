// Finding a GPUDevice. Browsers have navigator.gpu. Node has none: the Node entry (src/index.ts)
// registers a provider that loads the optional npm package `webgpu` (Dawn), so this file, which
// browsers bundle, never names that package or a node: module.
import { ConfigError } from '../../base/errors.js';

/** Returns a GPU (the navigator.gpu object) or throws a ConfigError naming what is missing. */
export type GpuProvider = () => Promise<GPU>;

let provider: GpuProvider | null = null;

/** Node entry: how to get a GPU where there is no navigator.gpu. */
export function setGpuProvider(p: GpuProvider | null): void {
  provider = p;
}

/** The provider set by setGpuProvider (tests swap it and put it back). */
export function getGpuProvider(): GpuProvider | null {
  return provider;
}

/** Adapter descriptions of software renderers (a CPU emulating a GPU: correct, slow). */
export const SOFTWARE_ADAPTER = /llvmpipe|swiftshader|softpipe|lavapipe|basic render/i;

export interface DeviceOptions {
  /** Adapter options, e.g. { featureLevel: 'compatibility' } for OpenGL-class adapters. */
  adapter?: GPURequestAdapterOptions & { featureLevel?: string };
}

/** A device with the adapter's largest compute limits, and the adapter's description. */
export async function acquireDevice(opts: DeviceOptions = {}): Promise<{ device: GPUDevice; description: string }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  let gpu: GPU | undefined = nav?.gpu;
  if (!gpu && provider) gpu = await provider();
  if (!gpu) {
    throw new ConfigError(
      'webgpu backend: this runtime has no WebGPU (no navigator.gpu; in Node install the optional package `webgpu`; in Chromium it may need --enable-unsafe-webgpu)',
    );
  }
  const adapter = await gpu.requestAdapter(opts.adapter);
  if (!adapter) throw new ConfigError('webgpu backend: no GPU adapter found (requestAdapter returned null)');
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
  const info = adapter.info;
  const description = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
  return { device, description };
}
