// Train: a small CIFAR-style ResNet on the embedded Fashion-MNIST slice (or dropped IDX files, or a
// dropped folder of images, one subfolder per class) in the train worker, with live loss and
// accuracy curves, progress and ETA, pause/resume, checkpoint download; then classify a drawing or
// a dropped image with the trained model.
import { app, engineFor } from './main.js';
import type { ClassifyResult, Rgba, TrainEvent, TrainSettings } from './protocol.js';
import { decodeImage, download, drawChart, dropZone, el, fmtTime, fromSource, relPath, topList } from './ui.js';

const SLICE_URL = new URL('./data/fashion-mnist-slice/', document.baseURI).href;

export function trainView(): HTMLElement {
  const num = (id: string, value: number, attrs: Record<string, number> = {}) => el('input', { id, type: 'number', value, ...attrs });
  const depth = el('select', { id: 'train-depth', 'aria-label': 'depth' }, ...[8, 14, 20].map((d) => el('option', { value: d }, `ResNet-${d}`)));
  const width = el('select', { id: 'train-width', 'aria-label': 'width' }, ...[4, 8, 16, 32].map((w) => el('option', { value: w }, String(w))));
  width.value = '16';
  const steps = num('train-steps', 300, { min: 1, max: 100000 });
  const batch = num('train-batch', 64, { min: 1, max: 1024 });
  const lr = num('train-lr', 0.1, { min: 0.0001, max: 10, step: 0.01 });
  const dataInfo = el('p', { class: 'muted', id: 'train-data' }, 'Data: the embedded Fashion-MNIST slice (2,000 training and 1,000 test images, 28×28 gray).');
  let dataChoice: TrainSettings['data'] = { kind: 'slice', baseUrl: SLICE_URL };
  const err = el('p', { class: 'error', hidden: true, role: 'alert' });
  const fail = (e: unknown) => {
    err.textContent = (e as Error).message ?? String(e);
    err.hidden = false;
  };

  const onData = async (files: File[]) => {
    err.hidden = true;
    try {
      const imgs = files.filter((f) => /\.(png|jpe?g|gif|webp|bmp)$/i.test(f.name));
      if (imgs.length) {
        const size = 32;
        dataInfo.textContent = `decoding ${imgs.length} images…`;
        const images: { label: string; rgba: Rgba }[] = [];
        for (const f of imgs) {
          const parts = relPath(f).split('/');
          if (parts.length < 2) throw new Error(`${f.name}: drop a folder with one subfolder per class (found an image outside a class folder)`);
          const bmp = await createImageBitmap(f);
          // center square, then size x size
          const s = Math.min(bmp.width, bmp.height);
          const c = new OffscreenCanvas(size, size);
          c.getContext('2d')!.drawImage(bmp, (bmp.width - s) / 2, (bmp.height - s) / 2, s, s, 0, 0, size, size);
          images.push({ label: parts[parts.length - 2], rgba: fromSource(c, size, size, size) });
        }
        dataChoice = { kind: 'folder', images };
        dataInfo.textContent = `Data: ${images.length} images in ${new Set(images.map((i) => i.label)).size} class folders (32×32 RGB; every 5th image of a class is held out for testing).`;
      } else {
        const idx = await Promise.all(files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
        dataChoice = { kind: 'idx', files: idx };
        dataInfo.textContent = `Data: IDX files ${idx.map((f) => f.name).join(', ')}.`;
      }
    } catch (e) {
      fail(e);
    }
  };

  const progress = el('progress', { id: 'train-progress', max: 1, value: 0 });
  const status = el('p', { id: 'train-status', class: 'status' }, 'Not started.');
  const info = el('p', { class: 'muted', id: 'train-info' });
  const lossChart = el('canvas', { class: 'chart', id: 'train-loss' });
  const accChart = el('canvas', { class: 'chart', id: 'train-acc' });
  const start = el('button', { id: 'train-start', class: 'primary' }, 'Train');
  const pause = el('button', { id: 'train-pause', disabled: true }, 'Pause');
  const stop = el('button', { id: 'train-stop', disabled: true }, 'Stop');
  const save = el('button', { id: 'train-download', disabled: true }, 'Download checkpoint');
  const result = el('div', { id: 'train-result', class: 'result' });
  let paused = false;
  let total = 0;

  const smooth = (v: number[]) => {
    let m = v[0] ?? 0;
    return v.map((x) => (m = 0.9 * m + 0.1 * x));
  };
  const redraw = () => {
    const h = app.trainHistory;
    drawChart(
      lossChart,
      [
        { values: h.map((p) => p.loss), color: '#b8c4e0', label: 'loss' },
        { values: smooth(h.map((p) => p.loss)), color: '#2a4fa8', label: 'smoothed' },
      ],
      total,
    );
    drawChart(
      accChart,
      [
        { values: h.map((p) => p.acc), color: '#bfe0c4', label: 'batch accuracy' },
        { values: smooth(h.map((p) => p.acc)), color: '#23803a', label: 'smoothed' },
      ],
      total,
      [0, 1],
    );
  };
  let frame = 0;
  const onEvent = (e: TrainEvent) => {
    if (e.type === 'step') {
      app.trainHistory.push({ step: e.step, loss: e.loss, acc: e.acc });
      total = e.steps;
      progress.max = e.steps;
      progress.value = e.step;
      status.textContent = `step ${e.step}/${e.steps} · loss ${e.loss.toFixed(3)} · batch accuracy ${(100 * e.acc).toFixed(0)}% · ${e.imagesPerSec.toFixed(0)} img/s · ETA ${fmtTime(e.etaSec)}`;
      // one redraw per animation frame at most
      if (!frame)
        frame = requestAnimationFrame(() => {
          frame = 0;
          redraw();
        });
    } else if (e.type === 'info') info.textContent = e.text;
    else if (e.type === 'done') {
      status.textContent =
        `done: ${e.steps} steps in ${e.seconds.toFixed(1)} s` +
        (e.testAcc === null ? '' : ` · test accuracy ${(100 * e.testAcc).toFixed(1)}% on ${e.testCount} images`);
      status.dataset.done = 'true';
      start.disabled = false;
      pause.disabled = stop.disabled = true;
      save.disabled = tryIt.hidden = false;
      redraw();
    } else if (e.type === 'error') {
      fail(new Error(e.error));
      start.disabled = false;
      pause.disabled = stop.disabled = true;
    }
  };

  start.addEventListener('click', async () => {
    err.hidden = true;
    app.trainHistory.length = 0;
    delete status.dataset.done;
    try {
      const { engine } = await engineFor('train');
      engine.onEvent = onEvent;
      const s: TrainSettings = {
        data: dataChoice,
        depth: Number(depth.value),
        width: Number(width.value),
        size: 32,
        steps: Number(steps.value),
        batchSize: Number(batch.value),
        lr: Number(lr.value),
        seed: 0,
      };
      if (!(s.steps >= 1) || !(s.batchSize >= 1) || !(s.lr > 0))
        throw new Error('steps and batch size must be positive integers and the learning rate positive');
      start.disabled = true;
      pause.disabled = stop.disabled = false;
      paused = false;
      pause.textContent = 'Pause';
      status.textContent = 'starting…';
      await engine.call('train', s);
    } catch (e) {
      start.disabled = false;
      fail(e);
    }
  });
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (paused) status.textContent += ' · paused';
    app.engines.train.call(paused ? 'pause' : 'resume').catch(fail);
  });
  stop.addEventListener('click', () => app.engines.train.call('stop').catch(fail));
  save.addEventListener('click', async () => {
    try {
      const c = await (await engineFor('train')).engine.call<{ weights: Uint8Array; sidecar: string }>('checkpoint');
      download('web-model.safetensors', c.weights, 'application/octet-stream');
      download('web-model.json', c.sidecar, 'application/json');
    } catch (e) {
      fail(e);
    }
  });

  // ---- try the trained model: draw (white on black, as Fashion-MNIST) or drop an image
  const pad = el('canvas', { id: 'train-draw', class: 'draw', width: 196, height: 196, 'aria-label': 'drawing pad' });
  const g = pad.getContext('2d')!;
  const clearPad = () => {
    g.fillStyle = '#000';
    g.fillRect(0, 0, pad.width, pad.height);
  };
  clearPad();
  let drawing = false;
  const pos = (e: PointerEvent) => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
  };
  pad.addEventListener('pointerdown', (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    const [x, y] = pos(e);
    g.beginPath();
    g.moveTo(x, y);
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    const [x, y] = pos(e);
    g.strokeStyle = '#fff';
    g.lineWidth = 14;
    g.lineCap = g.lineJoin = 'round';
    g.lineTo(x, y);
    g.stroke();
  });
  const classifyPx = async (px: Rgba) => {
    err.hidden = true;
    try {
      const r = await (await engineFor('train')).engine.call<ClassifyResult>('classifyTrained', { rgba: px });
      app.lastClassify = r;
      result.replaceChildren(
        topList(r.top),
        el('p', { class: 'timing' }, `${r.ms.toFixed(1)} ms · backend ${r.backend} · ${r.threads} thread${r.threads === 1 ? '' : 's'}`),
      );
    } catch (e) {
      fail(e);
    }
  };
  pad.addEventListener('pointerup', () => {
    drawing = false;
    classifyPx(fromSource(pad, pad.width, pad.height));
  });
  const tryIt = el(
    'div',
    { class: 'panel wide', hidden: true, id: 'train-try' },
    el('h2', {}, 'Try the trained model'),
    el(
      'div',
      { class: 'grid' },
      el('div', {}, pad, el('div', { class: 'row' }, el('button', { onclick: clearPad }, 'Clear'))),
      el(
        'div',
        {},
        dropZone(
          'Drop or pick an image to classify',
          'image/*',
          false,
          (fs) => {
            if (fs[0]) decodeImage(fs[0]).then(classifyPx, fail);
          },
          { id: 'train-image' },
        ),
        result,
      ),
    ),
  );

  return el(
    'div',
    { class: 'grid' },
    el(
      'div',
      { class: 'panel' },
      el('h2', {}, 'Data'),
      dataInfo,
      dropZone('Drop IDX files (images + labels; t10k/test in the name for a test set) or a folder of images with one subfolder per class', '', true, onData, {
        folder: true,
        id: 'train-files',
      }),
      el(
        'div',
        { class: 'row' },
        el(
          'label',
          { class: 'link' },
          'pick a folder…',
          (() => {
            const i = el('input', { type: 'file', hidden: true, webkitdirectory: true });
            i.addEventListener('change', () => i.files && onData([...i.files]));
            return i;
          })(),
        ),
        el(
          'button',
          {
            class: 'link',
            onclick: () => {
              dataChoice = { kind: 'slice', baseUrl: SLICE_URL };
              dataInfo.textContent = 'Data: the embedded Fashion-MNIST slice (2,000 training and 1,000 test images, 28×28 gray).';
            },
          },
          'use the embedded slice',
        ),
      ),
    ),
    el(
      'div',
      { class: 'panel' },
      el('h2', {}, 'Model and schedule'),
      el(
        'div',
        { class: 'form' },
        el('label', {}, 'Depth ', depth),
        el('label', {}, 'Width ', width),
        el('label', {}, 'Steps ', steps),
        el('label', {}, 'Batch ', batch),
        el('label', {}, 'Learning rate ', lr),
      ),
      el('p', { class: 'muted' }, 'SGD with Nesterov momentum, one-cycle learning rate, in a Web Worker.'),
      el('div', { class: 'row' }, start, pause, stop, save),
    ),
    el('div', { class: 'panel wide' }, el('h2', {}, 'Progress'), err, progress, status, info, el('div', { class: 'charts' }, lossChart, accChart)),
    tryIt,
  );
}
