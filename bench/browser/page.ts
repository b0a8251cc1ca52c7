// The page bench/browser.ts runs in Chromium: one timed forward per call, so the bench can
// interleave browser and Node round by round.
import { createModel, fuseForInference, getThreads, noGrad, scope, setBackend, setThreads, tensor, type FusedModel, type Module } from '../../src/browser.js';

let held: { name: string; model: Module; fused: FusedModel; x: Float32Array } | null = null;

async function forwardMs(model: string, threads: number, size: number): Promise<{ ms: number; threads: number }> {
  if (held?.name !== model) {
    held?.fused.dispose();
    held?.model.dispose();
    await setBackend('wasm');
    await setThreads(threads);
    const m = noGrad(() => createModel(model)).eval();
    const x = new Float32Array(3 * size * size);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i) * 0.5;
    held = { name: model, model: m, fused: fuseForInference(m), x };
  }
  const { fused, x } = held;
  const t0 = performance.now();
  scope(() => noGrad(() => fused.forward(tensor(x, [1, 3, size, size])).dataSync()[0]));
  return { ms: performance.now() - t0, threads: getThreads() };
}

(globalThis as unknown as { forwardMs: typeof forwardMs }).forwardMs = forwardMs;
document.title = 'ready';
