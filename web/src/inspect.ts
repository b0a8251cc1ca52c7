// Inspect: the `resnet info` table (layer, type, output shape, params, MACs) for any model and
// input size, and the feature maps of one image at a chosen layer.
import { engineFor, type Catalog } from './main.js';
import { modelPicker } from './picker.js';
import type { Rgba } from './protocol.js';
import { decodeImage, dropZone, el, fmtCount, showRgba } from './ui.js';

interface Info {
  outShape: number[];
  rows: { name: string; type: string; outShape: number[]; params: number; macs: number }[];
  params: number;
  macs: number;
  layers: string[];
}

export function inspectView(catalog: Catalog): HTMLElement {
  const picker = modelPicker(catalog, 'inspect', { weights: true });
  const input = el('input', { id: 'inspect-input', type: 'text', value: '3x224x224', 'aria-label': 'input size C×H×W', spellcheck: false });
  const err = el('p', { class: 'error', hidden: true, role: 'alert' });
  const totals = el('p', { id: 'inspect-totals', class: 'status' });
  const table = el('table', { id: 'inspect-table' });
  const layer = el('select', { id: 'inspect-layer', 'aria-label': 'layer' });
  const preview = el('canvas', { class: 'preview small' });
  const maps = el('div', { id: 'inspect-maps', class: 'maps' });
  const mapsInfo = el('p', { class: 'muted' }, 'Pick an image and a layer to see its feature maps.');
  let image: Rgba | null = null;
  let loadedKey = '';
  const fail = (e: unknown) => {
    err.textContent = (e as Error).message ?? String(e);
    err.hidden = false;
  };

  const parseInput = (): [number, number, number] => {
    const m = /^\s*(\d+)\s*[x×,]\s*(\d+)\s*[x×,]\s*(\d+)\s*$/.exec(input.value);
    if (!m) throw new Error(`input size must be C×H×W, e.g. 3x224x224; got '${input.value}'`);
    return [Number(m[1]), Number(m[2]), Number(m[3])];
  };

  let latest = 0;
  const showTable = async () => {
    err.hidden = true;
    const mine = ++latest;
    try {
      const req = picker.request();
      const { engine } = await engineFor('inspect');
      const model = req.weights.kind === 'pretrained' ? catalog.pretrained.find((w) => w.id === (req.weights as { id: string }).id)!.model : req.model;
      const r = await engine.call<Info>('info', { model, arch: req.arch, input: parseInput() });
      if (mine !== latest) return; // a newer request (model or size changed meanwhile) draws the table
      const head = el('tr', {}, ...['layer', 'type', 'output', 'params', 'MACs'].map((h) => el('th', {}, h)));
      table.replaceChildren(
        el('thead', {}, head),
        el(
          'tbody',
          {},
          ...r.rows.map((x) =>
            el(
              'tr',
              {},
              el('td', {}, x.name),
              el('td', {}, x.type),
              el('td', {}, x.outShape.join('×')),
              el('td', { class: 'num' }, x.params ? fmtCount(x.params) : ''),
              el('td', { class: 'num' }, x.macs ? fmtCount(x.macs) : ''),
            ),
          ),
        ),
      );
      totals.textContent = `${model}: ${fmtCount(r.params)} parameters, ${fmtCount(r.macs)} MACs for one ${parseInput().join('×')} image, output ${r.outShape.join('×')}`;
      const keep = layer.value;
      layer.replaceChildren(...r.layers.map((n) => el('option', { value: n }, n)));
      layer.value = r.layers.includes(keep) ? keep : (r.layers.find((n) => n === 'layer1') ?? r.layers[0]);
    } catch (e) {
      fail(e);
    }
  };

  const showMaps = async () => {
    if (!image) return;
    err.hidden = true;
    try {
      const { engine } = await engineFor('inspect');
      const req = picker.request();
      const key = JSON.stringify([req.model, req.arch, req.weights.kind === 'files' ? req.weights.files.map((f) => f.name) : req.weights]);
      if (key !== loadedKey) {
        await engine.call('load', req);
        loadedKey = key;
      }
      const input = parseInput();
      const f = await engine.call<{ c: number; h: number; w: number; shown: number; data: Float32Array }>('features', {
        rgba: image,
        layer: layer.value,
        maxMaps: 64,
        input,
      });
      mapsInfo.textContent = `${layer.value}: ${f.c} maps of ${f.h}×${f.w} for a ${input.join('×')} input; the first ${f.shown} shown, each scaled to its own range`;
      maps.replaceChildren(...Array.from({ length: f.shown }, (_, k) => mapCanvas(f.data.subarray(k * f.h * f.w, (k + 1) * f.h * f.w), f.w, f.h, k)));
    } catch (e) {
      fail(e);
    }
  };

  picker.onChange = () => {
    const [c, h, w] = picker.defaultInput();
    input.value = `${c}x${h}x${w}`;
    showTable();
  };
  input.addEventListener('change', () => {
    showTable();
    showMaps();
  });
  layer.addEventListener('change', showMaps);
  showTable();
  return el(
    'div',
    { class: 'grid' },
    el('div', { class: 'panel' }, el('h2', {}, 'Model'), picker.node, el('label', {}, 'Input C×H×W ', input)),
    el(
      'div',
      { class: 'panel' },
      el('h2', {}, 'Feature maps'),
      dropZone(
        'Drop or pick an image',
        'image/*',
        false,
        (fs) => {
          if (fs[0])
            decodeImage(fs[0]).then((px) => {
              image = px;
              showRgba(preview, px);
              showMaps();
            }, fail);
        },
        { id: 'inspect-image' },
      ),
      el('div', { class: 'row' }, el('label', {}, 'Layer ', layer), preview),
    ),
    el('div', { class: 'panel wide' }, err, mapsInfo, maps),
    el('div', { class: 'panel wide' }, el('h2', {}, 'Layers'), totals, el('div', { class: 'scroll' }, table)),
  );
}

function mapCanvas(v: Float32Array, w: number, h: number, k: number): HTMLCanvasElement {
  let lo = Infinity,
    hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const img = new ImageData(w, h);
  const s = hi > lo ? 255 / (hi - lo) : 0;
  for (let i = 0; i < v.length; i++) {
    const g = (v[i] - lo) * s;
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = g;
    img.data[4 * i + 3] = 255;
  }
  const c = el('canvas', { width: w, height: h, title: `channel ${k}` });
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}
