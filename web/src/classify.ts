// Classify: an image (drop, paste, pick, camera) through a chosen model and weights; top-5 with
// class names and probabilities, time per image, backend and threads.
import { app, engineFor, type Catalog } from './main.js';
import { modelPicker } from './picker.js';
import type { ClassifyResult, ModelSummary, Rgba } from './protocol.js';
import { cameraButton, decodeImage, defaultThreads, dropZone, el, fmtCount, showRgba, topList } from './ui.js';

export function classifyView(catalog: Catalog): HTMLElement {
  const picker = modelPicker(catalog, 'classify', { weights: true });
  const backend = el(
    'select',
    { id: 'classify-backend', 'aria-label': 'backend' },
    el('option', { value: 'wasm' }, 'wasm (SIMD)'),
    el('option', { value: 'ref' }, 'ref (plain TS)'),
  );
  const threads = el('input', { id: 'classify-threads', type: 'number', min: 1, max: 16, value: defaultThreads(), 'aria-label': 'threads' });
  const preview = el('canvas', { class: 'preview', id: 'classify-preview' });
  const modelInfo = el('p', { class: 'muted', id: 'classify-summary' }, 'model not loaded yet');
  const out = el('div', { id: 'classify-result', class: 'result' }, el('p', { class: 'muted' }, 'Drop, paste or pick an image.'));
  const err = el('p', { class: 'error', hidden: true, role: 'alert' });
  let image: Rgba | null = null;
  let loaded: string | null = null;
  let busy: Promise<void> = Promise.resolve();

  const fail = (e: unknown) => {
    err.textContent = (e as Error).message ?? String(e);
    err.hidden = false;
  };
  const run = () => {
    busy = busy.then(async () => {
      err.hidden = true;
      try {
        const { engine, backend: b, threads: t } = await engineFor('classify', backend.value, Number(threads.value) || 1);
        const req = picker.request();
        const key = JSON.stringify([req.model, req.arch, req.weights.kind === 'files' ? req.weights.files.map((f) => f.name) : req.weights]);
        if (key !== loaded) {
          modelInfo.textContent = 'loading the model…';
          engine.onEvent = (e) => {
            if (e.type === 'progress')
              modelInfo.textContent = `downloading the weights: ${(e.received / 2 ** 20).toFixed(1)}${e.total ? ` of ${(e.total / 2 ** 20).toFixed(1)}` : ''} MB`;
          };
          const s = await engine.call<ModelSummary>('load', req);
          loaded = key;
          modelInfo.textContent = `${s.name}: ${fmtCount(s.params)} parameters, ${s.classes} classes, input ${s.input.c}×${s.input.h}×${s.input.w} · weights: ${s.weights}${s.note ? ` · ${s.note}` : ''}`;
        }
        if (!image) return;
        out.replaceChildren(el('p', { class: 'muted' }, 'classifying…'));
        const r = await engine.call<ClassifyResult>('classify', { rgba: image });
        app.lastClassify = r;
        out.replaceChildren(
          topList(r.top),
          el(
            'p',
            { class: 'timing' },
            `${r.ms.toFixed(1)} ms per image · backend ${r.backend} · ${r.threads} thread${r.threads === 1 ? '' : 's'}${t !== Number(threads.value) && b === 'wasm' ? ` (asked for ${threads.value})` : ''}`,
          ),
        );
      } catch (e) {
        loaded = null;
        out.replaceChildren();
        fail(e);
      }
    });
  };
  const setImage = (px: Rgba) => {
    image = px;
    showRgba(preview, px);
    run();
  };
  const fromFiles = (files: File[]) => {
    if (files[0]) decodeImage(files[0]).then(setImage, fail);
  };
  picker.onChange = run;
  backend.addEventListener('change', () => {
    loaded = null;
    run();
  });
  threads.addEventListener('change', run);
  // paste an image anywhere while this view is shown
  document.addEventListener('paste', (e) => {
    const sec = document.getElementById('view-classify');
    if (!sec || sec.hidden) return;
    const f = [...(e.clipboardData?.files ?? [])].find((x) => x.type.startsWith('image/'));
    if (f) fromFiles([f]);
  });
  run();
  return el(
    'div',
    { class: 'grid' },
    el(
      'div',
      { class: 'panel' },
      el('h2', {}, 'Image'),
      dropZone('Drop an image here, paste one, or click to pick a file', 'image/*', false, fromFiles, { id: 'classify-image' }),
      el('div', { class: 'row' }, cameraButton(setImage, fail)),
      preview,
    ),
    el(
      'div',
      { class: 'panel' },
      el('h2', {}, 'Model'),
      picker.node,
      el('div', { class: 'row' }, el('label', {}, 'Backend ', backend), el('label', {}, 'Threads ', threads)),
      modelInfo,
    ),
    el('div', { class: 'panel' }, el('h2', {}, 'Top 5'), err, out),
  );
}
