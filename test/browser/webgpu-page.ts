// The page of test/browser-webgpu.test.ts: the browser entry (bundled by esbuild) on Chromium's
// WebGPU (navigator.gpu; SwiftShader on a machine without a GPU). window.webgpuRun gives the
// eval logits of the module forward and of the fused copy, and the adapter's description.
import { createModel, fuseForInference, noGrad, readNpy, readSafetensors, setBackend, tensor } from '../../src/browser.js';

async function bytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

(window as unknown as Record<string, unknown>).webgpuRun = async (o: { model: string; arch: object; weights: string; input: string }) => {
  const be = (await setBackend('webgpu')) as unknown as { adapterDescription: string };
  const m = noGrad(() => createModel(o.model, o.arch as Record<string, unknown>));
  m.loadStateDict(readSafetensors(await bytes(o.weights)));
  m.eval();
  const x = readNpy(await bytes(o.input));
  const y = noGrad(() => m.forward(tensor(x.data as Float32Array, x.shape)));
  const f = fuseForInference(m);
  const yf = f.forward(tensor(x.data as Float32Array, x.shape));
  const [a, b] = await Promise.all([y.data(), yf.data()]);
  f.dispose();
  return { logits: Array.from(a), fused: Array.from(b), adapter: be.adapterDescription };
};
document.title = 'ready';
