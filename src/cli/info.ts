// `resnet info <model>`: every layer with its output shape, parameters and MACs, and totals —
// the walk people do by hand with out = floor((in + 2P - K)/S) + 1.
import { createModel, getModelEntry } from '../models/registry.js';
import { noGrad } from '../tensor/tensor.js';
import { formatCount, formatMacs, parseArch, parseCHW } from './util.js';

export interface InfoOptions {
  input?: string;
  arch?: string;
  json?: boolean;
}

export function runInfo(name: string, o: InfoOptions, print: (s: string) => void): void {
  const entry = getModelEntry(name);
  const arch = parseArch(o.arch);
  const input = o.input ? parseCHW(o.input) : arch.inChannels ? [arch.inChannels as number, entry.defaultInput[1], entry.defaultInput[2]] : entry.defaultInput;
  const model = noGrad(() => createModel(name, arch));
  const { outShape, rows } = model.describe(input, '');
  const totalParams = model.numParameters();
  const totalMacs = rows.reduce((a, r) => a + r.macs, 0);
  model.dispose();
  if (o.json) {
    print(JSON.stringify({ model: name, input, output: outShape, params: totalParams, macs: totalMacs, layers: rows }));
    return;
  }
  const header = ['layer', 'type', 'output', 'params', 'MACs'];
  const table = rows.map((r) => [r.name, r.type, r.outShape.join('x'), r.params ? formatCount(r.params) : '', r.macs ? formatMacs(r.macs) : '']);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  print(`${name}: ${entry.description}`);
  print(`input ${input.join('x')}`);
  print(line(header));
  print(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const t of table) print(line(t));
  print(`total: ${formatCount(totalParams)} parameters, ${formatMacs(totalMacs)}MACs, output ${outShape.join('x')}`);
}
