// Issue 15: the round trip through PyTorch's distributed engine, as the README's "When one
// machine is not enough" shows it. A CIFAR ResNet-8 defined and initialised in resnet-ts →
// `resnet convert` to .pth → scripts/ddp_train.py under `torchrun --nproc_per_node 2` (DDP, gloo,
// CPU, 8 steps on 512 Fashion-MNIST images) → .pth written by torch.save → `resnet forward` loads
// it and gives PyTorch's eval logits on 64 test images, and `resnet export` writes ONNX that
// onnxruntime runs to the same logits (both rtol 1e-4, atol 1e-5: the project's parity tolerance).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readNpyFile, readPthFile, writeSafetensorsFile } from '../src/io/files.js';
import { createModel } from '../src/models/registry.js';
import { stateDictToArrays } from '../src/nn/state.js';
import { noGrad } from '../src/tensor/tensor.js';
import { assertClose } from './helpers.js';
import { PYTHON, pythonMissing } from './io-util.js';

const ROOT = join(import.meta.dirname, '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
const DATA = '/usr/share/datasets/fashion-mnist';
const skip = pythonMissing(['torch', 'numpy']) ?? (existsSync(join(DATA, 't10k-labels-idx1-ubyte.gz')) ? false : `no Fashion-MNIST in ${DATA}`);
const tmp = mkdtempSync(join(tmpdir(), 'resnet-ddp-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function resnet(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `resnet ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test(
  "DDP round trip: resnet-ts cifar_resnet8 → .pth → torchrun --nproc_per_node 2 (gloo) → .pth → resnet forward and ONNX in onnxruntime give PyTorch's logits (rtol 1e-4, atol 1e-5)",
  { skip },
  async () => {
    const arch = '{"inChannels":1}';
    const init = noGrad(() => createModel('cifar_resnet8', { inChannels: 1 }));
    const initArrays = stateDictToArrays(init);
    writeSafetensorsFile(join(tmp, 'init.safetensors'), initArrays);
    resnet('convert', join(tmp, 'init.safetensors'), join(tmp, 'init.pth'));

    // Debian's torchrun (1.13) needs --redirects/--tee set: its default "0" parses to None on Python >= 3.11.
    const torchrun = existsSync('/usr/bin/torchrun') ? ['/usr/bin/torchrun'] : [PYTHON, '-m', 'torch.distributed.run'];
    const r = spawnSync(
      torchrun[0],
      [
        ...torchrun.slice(1),
        '--standalone',
        '--nproc_per_node',
        '2',
        '--redirects',
        '1',
        '--tee',
        '1',
        join(ROOT, 'scripts', 'ddp_train.py'),
        '--init',
        join(tmp, 'init.pth'),
        '--out',
        join(tmp, 'trained.pth'),
        '--data-dir',
        DATA,
        '--train-images',
        '512',
        '--batch-size',
        '32',
        '--eval-images',
        '64',
        '--eval-out',
        join(tmp, 'eval'),
      ],
      { encoding: 'utf8', timeout: 300_000 },
    );
    assert.equal(r.status, 0, `torchrun failed:\n${r.stdout}\n${r.stderr}`);
    const report = /rank 0 of 2: (\d+) steps, test accuracy on 64 images ([\d.]+)/.exec(r.stdout);
    assert.ok(report, `no report from rank 0:\n${r.stdout}`);
    assert.equal(Number(report[1]), 8, '512 images / 2 processes / batch 32 = 8 steps');

    // PyTorch trained it: the weights moved, and the keys are still ours.
    const trained = readPthFile(join(tmp, 'trained.pth'));
    assert.deepEqual([...trained.keys()], [...initArrays.keys()]);
    assert.notDeepEqual(trained.get('conv1.weight')!.data, initArrays.get('conv1.weight')!.data);
    assert.equal(trained.get('bn1.num_batches_tracked')!.data[0], 8);

    const x = join(tmp, 'eval', 'x.npy');
    const torchLogits = readNpyFile(join(tmp, 'eval', 'logits.npy')).data;
    const labels = readNpyFile(join(tmp, 'eval', 'labels.npy')).data;
    resnet('forward', '--model', 'cifar_resnet8', '--arch', arch, '--weights', join(tmp, 'trained.pth'), '--input', x, '--output', join(tmp, 'ours.npy'));
    const ours = readNpyFile(join(tmp, 'ours.npy')).data;
    assertClose(ours, torchLogits, 1e-4, 1e-5, "resnet-ts logits of the DDP-trained model vs PyTorch's");
    let maxAbs = 0,
      agree = 0,
      correct = 0;
    for (let i = 0; i < ours.length; i++) maxAbs = Math.max(maxAbs, Math.abs(ours[i] - torchLogits[i]));
    const argmax = (a: Float32Array, i: number) => {
      let b = 0;
      for (let c = 1; c < 10; c++) if (a[i * 10 + c] > a[i * 10 + b]) b = c;
      return b;
    };
    for (let i = 0; i < 64; i++) {
      if (argmax(ours, i) === argmax(torchLogits, i)) agree++;
      if (argmax(ours, i) === labels[i]) correct++;
    }
    assert.equal(agree, 64, 'same predicted class on every image');
    assert.equal(correct / 64, Number(report[2]), 'same accuracy as PyTorch reported');

    // ONNX for serving, run in onnxruntime.
    const onnx = join(tmp, 'trained.onnx');
    resnet('export', '--model', 'cifar_resnet8', '--arch', arch, '--weights', join(tmp, 'trained.pth'), '--input', '1x28x28', '--onnx', onnx);
    const ort = await import('onnxruntime-node');
    const sess = await ort.InferenceSession.create(readFileSync(onnx));
    const xa = readNpyFile(x);
    const res = await sess.run({ [sess.inputNames[0]]: new ort.Tensor('float32', xa.data, xa.shape) });
    const ortLogits = res[sess.outputNames[0]].data as Float32Array;
    assertClose(ortLogits, torchLogits, 1e-4, 1e-5, "onnxruntime logits of the exported model vs PyTorch's");
    console.log(
      `# DDP round trip: ${report[1]} steps on 2 processes; resnet-ts vs PyTorch logits max abs error ${maxAbs.toExponential(2)}; accuracy on 64 test images ${report[2]} in both`,
    );
    init.dispose();
  },
);
