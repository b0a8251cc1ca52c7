// `resnet convert IN OUT`: weights between formats. IN: .pth/.pt (restricted unpickler, never
// runs code), .safetensors, .npz, .npy, or .onnx (a ResNet graph, via the importer). OUT, by its
// extension: .safetensors, .npz, .pth/.pt (torch.save's zip format), or a folder (OUT ending in '/' or an existing directory) of one
// .npy per tensor. Values are written as float32, int64 buffers (num_batches_tracked) as int64.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ConfigError } from '../base/errors.js';
import { detectFormat, readArrays } from '../io/detect.js';
import { parseFile, writeNpyFile, writeNpzFile, writePthFile, writeSafetensorsFile } from '../io/files.js';
import { importOnnx } from '../convert/onnx-import.js';
import type { ArrayMap } from '../io/types.js';
import { createModel } from '../models/registry.js';
import { noGrad } from '../tensor/tensor.js';
import { formatCount, parseArch } from './util.js';

export interface ConvertOptions {
  key?: string;
  keepModulePrefix?: boolean;
  model?: string;
  arch?: string;
  compress?: boolean;
}

type OutKind = 'safetensors' | 'npz' | 'pth' | 'dir';

function outKind(out: string): OutKind {
  if (out.endsWith('/') || (existsSync(out) && statSync(out).isDirectory())) return 'dir';
  const ext = out.toLowerCase().split('.').pop();
  if (ext === 'safetensors') return 'safetensors';
  if (ext === 'npz') return 'npz';
  if (ext === 'pth' || ext === 'pt') return 'pth';
  throw new ConfigError(`cannot tell the output format of '${out}' (use .safetensors, .npz, .pth, .pt, or a folder ending in '/')`);
}

export function runConvert(input: string, output: string, o: ConvertOptions, print: (s: string) => void): void {
  const kind = outKind(output);
  let arrays: ArrayMap;
  let from: string;
  if (input.toLowerCase().endsWith('.onnx')) {
    const r = parseFile(input, (b) => importOnnx(b));
    arrays = r.stateDict;
    from = `ONNX, ${r.info.summary}`;
  } else {
    let fmt = '';
    arrays = parseFile(input, (b) => {
      fmt = detectFormat(b);
      return readArrays(b, basename(input), { key: o.key, stripModulePrefix: !o.keepModulePrefix });
    });
    from = fmt;
  }
  if (o.model) {
    // Check the tensors load into the named model before writing anything.
    const model = noGrad(() => createModel(o.model!, parseArch(o.arch)));
    try {
      model.loadStateDict(arrays);
    } catch (e) {
      if (e instanceof Error) e.message = `${input}: ${e.message}`;
      throw e;
    } finally {
      model.dispose();
    }
  }
  let values = 0;
  for (const a of arrays.values()) values += a.data.length;
  if (kind === 'safetensors') writeSafetensorsFile(output, arrays, { format: 'pt' });
  else if (kind === 'npz') writeNpzFile(output, arrays, { compress: o.compress });
  else if (kind === 'pth') writePthFile(output, arrays);
  else {
    try {
      mkdirSync(output, { recursive: true });
    } catch (e) {
      throw new ConfigError(`cannot create folder ${output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    for (const [name, a] of arrays) {
      if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) throw new ConfigError(`tensor name '${name}' cannot be a file name`);
      writeNpyFile(join(output, `${name}.npy`), a);
    }
  }
  const dtypes = [...new Set([...arrays.values()].map((a) => a.dtype))].join('/');
  print(
    `converted ${arrays.size} tensors (${formatCount(values)} values, stored as ${dtypes}) from ${input} (${from}) to ${output} (${kind === 'dir' ? 'folder of .npy' : kind === 'pth' ? 'torch.save zip' : kind})` +
      (o.model ? `; they load into ${o.model}` : ''),
  );
}
