// A .pth written by PyTorch (torch.save of a torchvision state dict), read by our restricted
// unpickler, loaded into our model and run, gives PyTorch's logits.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readNpy } from '../src/io/npy.js';
import { readPth } from '../src/io/pth.js';
import { createModel } from '../src/models/registry.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { assertClose } from './helpers.js';
import { pythonMissing, runPython } from './io-util.js';

const SCRIPT = `
import sys, torch, torchvision, numpy as np
torch.manual_seed(0)
out = sys.argv[1]
x = torch.randn(2, 3, 48, 48)
np.save(out + '/x.npy', x.numpy())
for name, wrap in (('resnet18', False), ('resnext50_32x4d', True)):
    m = getattr(torchvision.models, name)(num_classes=5)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(mod.weight, 0.5, 1.5); torch.nn.init.normal_(mod.bias, 0, 0.1)
            mod.running_mean.normal_(0, 0.1); mod.running_var.uniform_(0.5, 1.5)
    m.eval()
    with torch.no_grad():
        np.save(out + '/' + name + '.npy', m(x).numpy())
    sd = m.state_dict()
    if wrap:
        # a DataParallel-style training checkpoint: wrapper dict, 'module.' prefixes, no num_batches_tracked
        sd = {'state_dict': {'module.' + k: v for k, v in sd.items() if not k.endswith('num_batches_tracked')}, 'epoch': 3}
    torch.save(sd, out + '/' + name + '.pth')
`;

const why = pythonMissing(['torch', 'torchvision']);
test(
  "torchvision .pth files (plain; wrapped with module. prefixes and no num_batches_tracked) give PyTorch's logits (rtol 1e-4, atol 1e-5)",
  { skip: why ?? false },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'pth-parity-'));
    runPython(SCRIPT, [dir]);
    const x = readNpy(new Uint8Array(readFileSync(join(dir, 'x.npy'))));
    for (const name of ['resnet18', 'resnext50_32x4d']) {
      const model = noGrad(() => createModel(name, { numClasses: 5 }));
      model.loadStateDict(readPth(new Uint8Array(readFileSync(join(dir, `${name}.pth`)))));
      const y = noGrad(() => model.eval().forward(ops.tensor(x.data, x.shape)));
      assertClose(y.dataSync(), readNpy(new Uint8Array(readFileSync(join(dir, `${name}.npy`)))).data, 1e-4, 1e-5, `${name} logits`);
    }
  },
);
