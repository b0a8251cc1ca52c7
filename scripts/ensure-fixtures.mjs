// Runs before `npm test`: (re)makes the PyTorch fixtures when they are missing or were made by
// another version of the script that writes them (its hash is recorded in <out>/stamp.txt).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/**
 * Runs `py ...args --out root` unless <out>/stamp.txt holds the hash of the script that made them
 * (and of the scripts it imports, `deps`); `out` is where the script writes, under `root`;
 * `check` (optional) runs first and may exit with a message about a missing input.
 */
function ensure(py, out, what, args = [], check = () => {}, { root = out, deps = [] } = {}) {
  const stamp = `${out}/stamp.txt`;
  const h = createHash('sha256');
  for (const f of [py, ...deps]) h.update(readFileSync(f));
  const hash = h.digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === hash) return;
  if (process.env.RESNET_NO_TORCH_FIXTURES === '1') {
    console.log(`RESNET_NO_TORCH_FIXTURES=1: not making ${what} (parity tests will skip)`);
    return;
  }
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
  if (probe.status !== 0) {
    console.error(
      "error: the parity fixtures need Debian's python3-torch and python3-torchvision: run `bash scripts/install-test-deps.sh` (or set RESNET_NO_TORCH_FIXTURES=1 to skip those tests)",
    );
    process.exit(1);
  }
  check();
  console.log(`making ${what} (${py}) …`);
  const r = spawnSync('/usr/bin/python3', [py, ...args, '--out', root], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  writeFileSync(stamp, hash + '\n');
}

ensure('scripts/make_fixtures.py', 'test/fixtures', 'PyTorch fixtures', [], undefined, { deps: ['scripts/fixture_margin.py'] });
// Issue 15, item 8: train-mode logits of every torchvision builder (its own stamp).
ensure('scripts/make_train_error_fixtures.py', 'test/fixtures/train_error', 'train-mode error fixtures');
// Issue 17: a random-weight torchvision resnet18 .pth and torchvision's preprocessing of two real
// photos that scripts/install-test-deps.sh puts in test/fixtures/photos (its own stamp).
ensure('scripts/make_pretrained_fixtures.py', 'test/fixtures/pretrained', 'pretrained-weights fixtures', ['--photos', 'test/fixtures/photos'], () => {
  if (!existsSync('test/fixtures/photos/rocket.jpg') || !existsSync('test/fixtures/photos/chelsea.png')) {
    console.error('error: the pretrained-weights fixtures need two photos in test/fixtures/photos: run `bash scripts/install-test-deps.sh`');
    process.exit(1);
  }
});
// Issue 13: ResNet-D's average-pool shortcut, timm's definition written out in plain torch.
ensure('scripts/make_resnet_d_fixtures.py', 'test/fixtures/resnet50_avgdown', 'ResNet-D fixtures', [], undefined, {
  root: 'test/fixtures',
  deps: ['scripts/make_fixtures.py', 'scripts/fixture_margin.py'],
});
