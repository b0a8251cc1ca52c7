// navigator.gpu for the WebGPU peers in Node (onnxruntime-web's webgpu EP, tfjs-backend-webgpu):
// the same GPU object our webgpu backend uses in Node (src/backend/webgpu/node.ts: Dawn from the
// npm package `webgpu`, its default backend first, else OpenGL/llvmpipe in compatibility mode;
// RESNET_WEBGPU_FLAGS passes Dawn toggles), so every peer gets the same adapter.
import '../../src/backend/webgpu/node.js';
import { getGpuProvider } from '../../src/backend/webgpu/device.js';

/** Installs navigator.gpu (and the GPU* globals) and returns the adapter's description. */
export async function installNodeGpu(): Promise<string> {
  const provider = getGpuProvider();
  if (!provider) throw new Error('no WebGPU provider registered');
  const gpu = await provider(); // also assigns GPUBufferUsage, GPUMapMode, ... to globalThis
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter (requestAdapter returned null)');
  const i = adapter.info;
  const nav = { gpu, userAgent: `Node.js/${process.versions.node}`, hardwareConcurrency: 1, language: 'en-US' };
  Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
  return [i?.vendor, i?.architecture, i?.device, i?.description].filter(Boolean).join(' ') || 'unknown adapter';
}

/** Mesa llvmpipe/lavapipe/softpipe, SwiftShader, Microsoft Basic Render: CPU emulations of a GPU. */
export function isSoftwareAdapter(description: string): boolean {
  return /llvmpipe|lavapipe|softpipe|swiftshader|basic render/i.test(description);
}
