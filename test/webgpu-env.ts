// The webgpu backend for tests: the process-wide instance (the one setBackend('webgpu') selects),
// or the one-line reason there is none here (no npm package `webgpu`, no adapter), for `skip`;
// with RESNET_REQUIRE_WEBGPU=1 (CI) having none is an error instead.
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
      // CI has Mesa's llvmpipe, so there a missing adapter is a failure, not a skip (.ci/run sets this)
      if (process.env.RESNET_REQUIRE_WEBGPU === '1') throw new Error(`RESNET_REQUIRE_WEBGPU=1 but ${(e as Error).message}`, { cause: e });
      reason = `no webgpu here: ${(e as Error).message}`;
    }
  }
  return reason;
}

export function webgpuForTests(): Promise<WebGpuBackend> {
  return webgpuBackend();
}
