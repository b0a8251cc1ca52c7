// The page of bench/webgpu-browser.ts: resnet-ts on WebGPU and onnxruntime-web's webgpu execution
// provider (served from node_modules/onnxruntime-web/dist as /ort/), same adapter, same model
// (the ONNX file is our exporter's copy of the same random weights). Each call times one batch
// including the read of the logits (both return them to JavaScript).
import { createModel, fuseForInference, noGrad, readSafetensors, scope, setBackend, tensor, type FusedModel } from '../../src/browser.js';

type Ort = typeof import('onnxruntime-web');
let ort: Ort | null = null;
const held = new Map<string, { fused: FusedModel; x: Float32Array; shape: [number, number, number, number] }>();
const sessions = new Map<string, { s: import('onnxruntime-web').InferenceSession; x: Float32Array; shape: number[] }>();

async function bytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

const input = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);

const w = window as unknown as Record<string, unknown>;
w.adapter = async () => ((await setBackend('webgpu')) as unknown as { adapterDescription: string }).adapterDescription;

w.oursMs = async (model: string, batch: number, size: number) => {
  const key = `${model}-${batch}-${size}`;
  let h = held.get(key);
  if (!h) {
    await setBackend('webgpu');
    const m = noGrad(() => createModel(model));
    m.loadStateDict(readSafetensors(await bytes(`${model}.safetensors`)));
    h = { fused: fuseForInference(m.eval()), x: input(batch * 3 * size * size), shape: [batch, 3, size, size] };
    held.set(key, h);
  }
  const t0 = performance.now();
  const y = scope(() => h.fused.forward(tensor(h.x, h.shape)).keep());
  await y.data();
  const ms = performance.now() - t0;
  y.dispose();
  return ms;
};

w.ortMs = async (model: string, batch: number, size: number) => {
  const key = `${model}-${batch}-${size}`;
  let s = sessions.get(key);
  if (!s) {
    const url = '/ort/ort.webgpu.bundle.min.mjs'; // served at run time: not part of this bundle
    ort ??= (await import(url)) as Ort;
    const sess = await ort!.InferenceSession.create(await bytes(`${model}.onnx`), { executionProviders: ['webgpu'] });
    s = { s: sess, x: input(batch * 3 * size * size), shape: [batch, 3, size, size] };
    sessions.set(key, s);
  }
  const t0 = performance.now();
  const r = await s.s.run({ [s.s.inputNames[0]]: new ort!.Tensor('float32', s.x, s.shape) });
  const out = r[s.s.outputNames[0]];
  await out.getData();
  return performance.now() - t0;
};
document.title = 'ready';
