// `resnet convert` end to end against PyTorch: a torchvision checkpoint written by torch.save
// (wrapped in {"state_dict": ..., "epoch": ...}) is converted to .safetensors, which PyTorch then
// reads back (a small safetensors reader in Python: JSON header + torch.frombuffer) with every
// tensor, dtype (float32, int64 num_batches_tracked) and value unchanged; then to .npz (read by
// NumPy) and to a folder of .npy files. 11,699,132 values = 11,689,512 parameters + 9,600
// running-statistics values + 20 num_batches_tracked. Bad requests give one clear line on stderr.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readNpyFile, readSafetensorsFile, readSafetensorsMetadataFile } from '../src/io/files.js';
import { pythonMissing, runPython } from './io-util.js';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
function resnet(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
function assertCleanError(r: ReturnType<typeof resnet>, pattern: RegExp) {
  assert.notEqual(r.code, 0, `expected a non-zero exit, stdout: ${r.out}`);
  const lines = r.err.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.err}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern);
}

const skip = pythonMissing(['torch', 'torchvision', 'numpy']) ?? false;
const tmp = mkdtempSync(join(tmpdir(), 'resnet-convert-'));
const PTH = join(tmp, 'resnet18.pth');
after(() => rmSync(tmp, { recursive: true, force: true }));

before(() => {
  if (skip) return;
  runPython(
    String.raw`
import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet18()
m.train()
m(torch.randn(4, 3, 32, 32))  # real running statistics and num_batches_tracked = 1
sd = m.state_dict()
sd['bn1.num_batches_tracked'].fill_(12345)
torch.save({'state_dict': sd, 'epoch': 3}, sys.argv[1])
`,
    [PTH],
  );
});

// Reads a .safetensors file with nothing but json + torch.frombuffer, and compares it with the checkpoint.
const CHECK_SAFETENSORS = String.raw`
import json, struct, sys, torch
def read_safetensors(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    header = json.loads(b[8:8 + n])
    data = b[8 + n:]
    dt = {'F32': torch.float32, 'F16': torch.float16, 'I64': torch.int64}
    out = {}
    for k, v in header.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']
        out[k] = torch.frombuffer(bytearray(data[s:e]), dtype=dt[v['dtype']]).reshape(v['shape'])
    return out, header.get('__metadata__')
ours, meta = read_safetensors(sys.argv[2])
ref = torch.load(sys.argv[1])['state_dict']
assert list(ours) == list(ref) or sorted(ours) == sorted(ref), (sorted(set(ours) ^ set(ref)))[:5]
for k, t in ref.items():
    assert ours[k].dtype == t.dtype, (k, ours[k].dtype, t.dtype)
    assert ours[k].shape == t.shape, (k, ours[k].shape, t.shape)
    assert torch.equal(ours[k], t), k
print(len(ref), meta['format'])
`;

test('convert .pth → .safetensors: PyTorch reads back every tensor with its dtype and exact values', { skip }, () => {
  const st = join(tmp, 'resnet18.safetensors');
  const r = resnet('convert', PTH, st, '--model', 'resnet18');
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /converted 122 tensors \(11,699,132 values, stored as F32\/I64\) from .*resnet18\.pth \(pth\) to .*\(safetensors\); they load into resnet18/,
  );
  assert.deepEqual(runPython(CHECK_SAFETENSORS, [PTH, st]).trim(), '122 pt');
  assert.equal(readSafetensorsMetadataFile(st).format, 'pt');
  assert.equal(readSafetensorsFile(st).get('bn1.num_batches_tracked')!.data[0], 12345);
});

test('convert .safetensors → .npz → folder of .npy: NumPy reads the same values', { skip }, () => {
  const st = join(tmp, 'resnet18.safetensors');
  if (!existsSync(st)) assert.equal(resnet('convert', PTH, st).code, 0);
  const npz = join(tmp, 'resnet18.npz');
  const r = resnet('convert', st, npz, '--compress');
  assert.equal(r.code, 0, r.err);
  const out = runPython(
    String.raw`
import sys, numpy as np, torch
z = np.load(sys.argv[2])
ref = torch.load(sys.argv[1])['state_dict']
assert sorted(z.files) == sorted(ref), sorted(set(z.files) ^ set(ref))[:5]
for k, t in ref.items():
    a = z[k]
    assert a.dtype == (np.int64 if t.dtype == torch.int64 else np.float32), (k, a.dtype)
    assert np.array_equal(a, t.numpy()), k
print(len(z.files))
`,
    [PTH, npz],
  );
  assert.equal(out.trim(), '122');
  const dir = join(tmp, 'arrays') + '/';
  const r2 = resnet('convert', npz, dir);
  assert.equal(r2.code, 0, r2.err);
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.npy')).length, 122);
  const w = readNpyFile(join(dir, 'layer4.1.conv2.weight.npy'));
  assert.deepEqual(w.shape, [512, 512, 3, 3]);
  assert.deepEqual(w.data, readSafetensorsFile(st).get('layer4.1.conv2.weight')!.data);
});

test('convert reports a model mismatch in one line and writes nothing then', { skip }, () => {
  const out = join(tmp, 'never.safetensors');
  assertCleanError(resnet('convert', PTH, out, '--model', 'resnet50'), /resnet18\.pth.*(shape mismatch|missing keys|do(es)? not match)/);
  assert.ok(!existsSync(out));
  assertCleanError(resnet('convert', join(tmp, 'nope.pth'), out), /no such file/);
  assertCleanError(resnet('convert', PTH, join(tmp, 'x.weird')), /cannot tell the output format/);
});
