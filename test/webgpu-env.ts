// The webgpu backend for tests: the process-wide instance (the one setBackend('webgpu') selects),
// or the one-line reason there is none here (no npm package `webgpu`, no adapter), for `skip`.
import '../src/index.js'; // the Node entry registers the provider that loads the package `webgpu`
import { webgpuBackend, type WebGpuBackend } from '../src/backend/webgpu/index.js';

let reason: string | false | undefined;

/** false when a webgpu device can be had here, else why not (the backend's own error). */
export async function webgpuSkipReason(): Promise<string | false> {
  if (reason === undefined) {
    try {
      await webgpuBackend();
      reason = false;
    } catch (e) {
      reason = `no webgpu here: ${(e as Error).message}`;
    }
  }
  return reason;
}

export function webgpuForTests(): Promise<WebGpuBackend> {
  return webgpuBackend();
}
