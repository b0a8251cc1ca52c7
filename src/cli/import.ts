// `resnet import model.onnx --out weights.safetensors`: recognise a ResNet ONNX graph, print the
// model and the flags to use it with, and write its weights under torchvision's key names.
import { parseFile, writeSafetensorsFile } from '../io/files.js';
import { importOnnx } from '../convert/onnx-import.js';
import { formatCount } from './util.js';

export interface ImportOptions {
  out?: string;
  json?: boolean;
}

export function runImport(file: string, o: ImportOptions, print: (s: string) => void): void {
  const r = parseFile(file, (b) => importOnnx(b));
  const archFlag = Object.keys(r.arch.options).length ? ` --arch '${JSON.stringify(r.arch.options)}'` : '';
  if (o.out) {
    writeSafetensorsFile(o.out, r.stateDict, {
      format: 'pt',
      'resnet-ts.model': r.arch.model,
      'resnet-ts.arch': JSON.stringify(r.arch.options),
      source: file,
    });
  }
  if (o.json) {
    print(JSON.stringify({ model: r.arch.model, arch: r.arch.options, params: r.model.numParameters(), ...r.info, out: o.out ?? null }));
    return;
  }
  print(`${file}: ${r.info.summary}`);
  print(`  producer ${r.info.producer || '?'}, opset ${r.info.opset}, IR ${r.info.irVersion}; ${formatCount(r.model.numParameters())} parameters`);
  if (o.out) {
    print(`wrote ${o.out}: ${r.stateDict.size} tensors`);
    print(`use it with: resnet forward --model ${r.arch.model}${archFlag} --weights ${o.out} ...`);
  }
}
