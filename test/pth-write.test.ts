// .pth writing (issue 15): writePth / `resnet convert X.safetensors X.pth` against Debian's
// PyTorch 1.13. A resnet-ts model's state dict, written as .pth, must load with
// torch.load(f, weights_only=True) into an OrderedDict whose tensors, dtypes (float32, int64
// num_batches_tracked) and values are exactly ours, must load strictly into torchvision's builder
// (load_state_dict) and give our eval logits there; and its data.pkl and storages must be byte for
// byte what torch.save writes for that same OrderedDict, with every entry 64-byte aligned.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeNpyFile, writeNpzFile, writeSafetensorsFile } from '../src/io/files.js';
import { readNpy } from '../src/io/npy.js';
import { readPth, writePth } from '../src/io/pth.js';
import { createModel } from '../src/models/registry.js';
import { stateDictToArrays } from '../src/nn/state.js';
import * as ops from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { assertClose } from './helpers.js';
import { pythonMissing, runPython } from './io-util.js';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const skip = pythonMissing(['torch', 'torchvision', 'numpy']) ?? false;
const tmp = mkdtempSync(join(tmpdir(), 'resnet-pth-write-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const CHECK = String.raw`
import sys, io, zipfile, collections, numpy as np, torch, torchvision
pth, npz, builder, xfile, out = sys.argv[1:6]
sd = torch.load(pth, weights_only=True)
assert type(sd) is collections.OrderedDict, type(sd)
ref = np.load(npz)
assert list(sd) == list(ref.files), 'key order'
for k, t in sd.items():
    a = ref[k]
    want = torch.int64 if k.endswith('num_batches_tracked') else torch.float32
    assert t.dtype == want and t.is_contiguous() and list(t.shape) == list(a.shape), (k, t.dtype, t.shape)
    assert np.array_equal(t.numpy(), a), k
m = getattr(torchvision.models, builder)(num_classes=10)
m.load_state_dict(sd, strict=True)
m.eval()
with torch.no_grad():
    y = m(torch.from_numpy(np.load(xfile)))
np.save(out, y.numpy())
# torch.save of the same OrderedDict: same pickle, same storages (torch 1.13 names the folder
# after the file's stem: save as archive.pth to get ours).
theirs = out + '.archive.pth'
import os
os.makedirs(theirs + '.d', exist_ok=True)
tp = os.path.join(theirs + '.d', 'archive.pth')
torch.save(sd, tp)
za, zb = zipfile.ZipFile(tp), zipfile.ZipFile(pth)
for info in za.infolist():
    assert za.read(info.filename) == zb.read(info.filename), info.filename
for info in zb.infolist():
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    assert start % 64 == 0, (info.filename, start)
    assert info.compress_type == zipfile.ZIP_STORED
print(len(sd), sum(t.numel() for t in sd.values()), sorted(n for n in zb.namelist()) == sorted(za.namelist() + ['archive/byteorder']))
`;

for (const builder of ['resnet18']) {
  test(
    `${builder}: our .pth loads with torch.load(weights_only=True) bit-exact, loads strictly into torchvision's ${builder}, gives our eval logits (rtol 1e-4, atol 1e-5); data.pkl and storages byte-identical to torch.save's`,
    { skip },
    () => {
      const model = noGrad(() => createModel(builder, { numClasses: 10 }));
      // Non-trivial buffers: one train-mode forward moves the running stats and num_batches_tracked.
      const x = ops.randn([2, 3, 32, 32]);
      model.train();
      noGrad(() => model.forward(x));
      model.eval();
      const arrays = stateDictToArrays(model);
      const y = noGrad(() => model.forward(x));
      const st = join(tmp, `${builder}.safetensors`),
        pth = join(tmp, `${builder}.pth`),
        npz = join(tmp, `${builder}.npz`);
      writeSafetensorsFile(st, arrays);
      writeNpzFile(npz, arrays);
      writeNpyFile(join(tmp, `${builder}.x.npy`), { dtype: 'F32', shape: [...x.shape], data: x.dataSync() });
      // Through the CLI, as a user would.
      const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'convert', st, pth], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /torch\.save zip/);
      const out = join(tmp, `${builder}.logits.npy`);
      const said = runPython(CHECK, [pth, npz, builder, join(tmp, `${builder}.x.npy`), out])
        .trim()
        .split(' ');
      assert.equal(Number(said[0]), arrays.size);
      assert.equal(said[2], 'True', 'same entries as torch.save plus byteorder');
      assertClose(readNpy(new Uint8Array(readFileSync(out))).data, y.dataSync(), 1e-4, 1e-5, `${builder} logits in PyTorch vs ours`);
      // And our own reader takes it back unchanged.
      const back = readPth(new Uint8Array(readFileSync(pth)));
      for (const [k, a] of arrays) assert.deepEqual(back.get(k), a, k);
      model.dispose();
    },
  );
}

test('writePth: scalars, empty and zero-size tensors, >255 memo entries and >1000 items round-trip through torch.load(weights_only=True)', { skip }, () => {
  const m = new Map<string, { dtype: 'F32' | 'I64'; shape: number[]; data: Float32Array }>();
  m.set('scalar', { dtype: 'F32', shape: [], data: Float32Array.of(-2.5) });
  m.set('empty', { dtype: 'F32', shape: [0], data: new Float32Array(0) });
  m.set('zero_mid', { dtype: 'F32', shape: [2, 0, 3], data: new Float32Array(0) });
  m.set('big_count', { dtype: 'I64', shape: [], data: Float32Array.of(2 ** 40) });
  m.set('five_d', { dtype: 'F32', shape: [1, 2, 1, 2, 1], data: Float32Array.of(1, 2, 3, 4) });
  for (let i = 0; i < 1100; i++) m.set(`t.${i}`, { dtype: 'F32', shape: [(i % 3) + 1], data: Float32Array.from({ length: (i % 3) + 1 }, (_, j) => i + j / 8) });
  const file = join(tmp, 'odd.pth');
  writeFileSync(file, writePth(m));
  const got = JSON.parse(
    runPython(
      String.raw`
import sys, json, torch
sd = torch.load(sys.argv[1], weights_only=True)
print(json.dumps({k: [str(t.dtype), list(t.shape), list(t.stride()), t.flatten().tolist()] for k, t in sd.items()}))
`,
      [file],
    ),
  );
  assert.equal(Object.keys(got).length, m.size);
  for (const [k, a] of m) {
    const [dtype, shape, , values] = got[k];
    assert.equal(dtype, a.dtype === 'I64' ? 'torch.int64' : 'torch.float32', k);
    assert.deepEqual(shape, a.shape, k);
    assert.deepEqual(values, [...a.data], k);
  }
  assert.deepEqual(got.zero_mid[2], [3, 3, 1], "torch's strides for a zero-size dim");
});
