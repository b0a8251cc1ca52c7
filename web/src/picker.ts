// The model chooser shared by Classify and Inspect: a model name (or a pretrained weight set),
// optional constructor options as JSON, and optional dropped weight files.
import type { Catalog } from './main.js';
import type { LoadRequest } from './protocol.js';
import { dropZone, el } from './ui.js';

export interface Picker {
  node: HTMLElement;
  /** The load request for the current choice (throws on bad JSON options). */
  request(): LoadRequest;
  /** Called when anything changes. */
  onChange: () => void;
  /** The chosen model's default input [C, H, W]. */
  defaultInput(): [number, number, number];
}

export function modelPicker(catalog: Catalog, prefix: string, opts: { weights: boolean; initial?: string }): Picker {
  const select = el(
    'select',
    { id: `${prefix}-model`, 'aria-label': 'model' },
    el('optgroup', { label: 'Architectures' }, ...catalog.models.map((m) => el('option', { value: m.name, title: m.description }, m.name))),
    el(
      'optgroup',
      { label: 'Pretrained (torchvision, ImageNet)' },
      ...catalog.pretrained.map((w) => el('option', { value: `pretrained:${w.id}` }, `${w.id} — ${w.acc1}% top-1, ${w.sizeMB.toFixed(0)} MB`)),
    ),
  );
  select.value = opts.initial ?? 'resnet18';
  const arch = el('input', { id: `${prefix}-arch`, type: 'text', placeholder: '{"numClasses": 10}', 'aria-label': 'model options (JSON)', spellcheck: false });
  const base = el('input', {
    id: `${prefix}-base`,
    type: 'text',
    placeholder: 'the registry URL (download.pytorch.org)',
    'aria-label': 'where pretrained weights are fetched from',
    spellcheck: false,
  });
  const baseRow = el('label', { hidden: true }, 'Weights from ', base);
  let files: { name: string; bytes: Uint8Array }[] = [];
  const fileInfo = el('span', { class: 'muted' }, 'no weights: random initialisation');
  const clear = el(
    'button',
    {
      class: 'link',
      hidden: true,
      onclick: () => {
        files = [];
        fileInfo.textContent = 'no weights: random initialisation';
        clear.hidden = true;
        p.onChange();
      },
    },
    'remove',
  );
  const p: Picker = {
    node: el(
      'div',
      { class: 'picker' },
      el('label', {}, 'Model ', select),
      el('label', {}, 'Options ', arch),
      baseRow,
      opts.weights
        ? el(
            'div',
            { class: 'weights' },
            dropZone(
              'Drop weights here or click: .safetensors, .pth, .onnx, or a resnet-ts checkpoint (.safetensors + .json)',
              '.safetensors,.pth,.pt,.bin,.onnx,.json,.npz',
              true,
              async (fs) => {
                files = await Promise.all(fs.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
                fileInfo.textContent = files.map((f) => `${f.name} (${(f.bytes.length / 2 ** 20).toFixed(1)} MB)`).join(', ');
                clear.hidden = false;
                p.onChange();
              },
              { id: `${prefix}-weights` },
            ),
            el('div', {}, fileInfo, ' ', clear),
          )
        : null,
    ),
    request(): LoadRequest {
      let a: Record<string, unknown> = {};
      if (arch.value.trim()) {
        try {
          a = JSON.parse(arch.value);
        } catch {
          throw new Error(`model options must be JSON, e.g. {"numClasses": 10}; got ${arch.value}`);
        }
      }
      if (select.value.startsWith('pretrained:'))
        return {
          model: '',
          arch: a,
          weights: files.length
            ? { kind: 'files', files }
            : { kind: 'pretrained', id: select.value.slice(11), ...(base.value.trim() ? { baseUrl: base.value.trim() } : {}) },
        };
      return { model: select.value, arch: a, weights: files.length ? { kind: 'files', files } : { kind: 'none' } };
    },
    onChange: () => {},
    defaultInput() {
      const name = select.value.startsWith('pretrained:') ? catalog.pretrained.find((w) => `pretrained:${w.id}` === select.value)!.model : select.value;
      return catalog.models.find((m) => m.name === name)!.input;
    },
  };
  select.addEventListener('change', () => {
    baseRow.hidden = !select.value.startsWith('pretrained:');
    p.onChange();
  });
  base.addEventListener('change', () => p.onChange());
  arch.addEventListener('change', () => p.onChange());
  return p;
}
