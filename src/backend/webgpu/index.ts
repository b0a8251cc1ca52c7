// The 'webgpu' backend's process-wide instance. The registry imports this module lazily on
// `await setBackend('webgpu')`; the device is found then (device.ts), never at import.
import { acquireDevice, type DeviceOptions } from './device.js';
import { WebGpuBackend } from './webgpu.js';

export { WebGpuBackend } from './webgpu.js';
export { setGpuProvider, getGpuProvider, acquireDevice, type GpuProvider, type DeviceOptions } from './device.js';

let creating: Promise<WebGpuBackend> | null = null;
let options: DeviceOptions = {};

/** Adapter options for the device setBackend('webgpu') creates; call before it. */
export function setWebGpuOptions(o: DeviceOptions): void {
  options = o;
}

/** The webgpu backend, created on first use. */
export function webgpuBackend(): Promise<WebGpuBackend> {
  creating ??= acquireDevice(options).then(
    ({ device, description }) => {
      const b = new WebGpuBackend(device, description);
      b.onDispose = () => (creating = null); // the next call makes a new device
      return b;
    },
    (e) => {
      creating = null;
      throw e;
    },
  );
  return creating;
}
