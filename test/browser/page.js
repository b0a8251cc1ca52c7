// The minimal inference page the bundler tests build with esbuild, Vite and webpack: it imports
// 'resnet-ts' as an app would, and exposes two functions for the test to call through Playwright.
// Threads are set on the backend object: importing setThreads/getThreads pulls the wasm backend into
// the page's static graph, which Vite reports as an ineffective dynamic import (INEFFECTIVE_DYNAMIC_IMPORT).
import { createModel, getBackend, noGrad, readNpy, readSafetensors, setBackend, tensor } from 'resnet-ts';

async function bytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function setup({ model, arch, weights, threads }) {
  const be = await setBackend('wasm');
  await be.setThreads(threads);
  const m = noGrad(() => createModel(model, arch));
  m.loadStateDict(readSafetensors(await bytes(weights)));
  return m.eval();
}

/** Logits of the model for the input .npy, as a plain array. */
window.logits = async (o) => {
  const m = await setup(o);
  const x = readNpy(await bytes(o.input));
  const out = noGrad(() => m.forward(tensor(x.data, x.shape)));
  return { logits: Array.from(out.dataSync()), shape: out.shape, threads: getBackend().threads, isolated: self.crossOriginIsolated === true };
};

let held = null;

/**
 * `n` forwards in the README's inference pattern (the model and input are built on the first call
 * and kept); after each, the wasm backend's live tensor bytes and its memory size. The test adds
 * the JS heap after a forced GC through the DevTools protocol.
 */
window.forwards = async (o, n) => {
  if (!held) {
    const m = await setup(o);
    const all = readNpy(await bytes(o.input));
    // the first `batch` images of the input
    const b = o.batch ?? all.shape[0];
    const x = { data: all.data.subarray(0, (all.data.length / all.shape[0]) * b), shape: [b, ...all.shape.slice(1)] };
    held = { m, x };
  }
  const { m, x } = held;
  const be = getBackend();
  const live = [],
    wasm = [];
  for (let i = 0; i < n; i++) {
    const y = noGrad(() => m.forward(tensor(x.data, x.shape)));
    if (!Number.isFinite(y.dataSync()[0])) throw new Error(`forward ${i}: non-finite logits`);
    live.push(be.allocatedFloats() * 4);
    wasm.push(be.heap?.byteLength ?? 0);
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 0));
  }
  return { live, wasm, threads: getBackend().threads, isolated: self.crossOriginIsolated === true };
};
document.title = 'ready';
