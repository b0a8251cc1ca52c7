// Runs before `npm test`: (re)makes the PyTorch fixtures in test/fixtures when they are missing
// or were made by another version of scripts/make_fixtures.py (hash recorded in stamp.txt).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

// Pretrained-weights fixtures (scripts/make_pretrained_fixtures.py, own stamp): a random-weight
// torchvision .pth and torchvision's preprocessing of two real photos that
// scripts/install-test-deps.sh puts in test/fixtures/photos.
{
  const script = 'scripts/make_pretrained_fixtures.py';
  const out = 'test/fixtures/pretrained';
  const stamp = `${out}/stamp.txt`;
  const hash = createHash('sha256').update(readFileSync(script)).digest('hex');
  const fresh = existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === hash;
  if (!fresh && process.env.RESNET_NO_TORCH_FIXTURES !== '1') {
    if (!existsSync('test/fixtures/photos/rocket.jpg') || !existsSync('test/fixtures/photos/chelsea.png')) {
      console.error('error: the pretrained-weights fixtures need two photos in test/fixtures/photos: run `bash scripts/install-test-deps.sh`');
      process.exit(1);
    }
    console.log(`making pretrained-weights fixtures (${script}) …`);
    const r = spawnSync('/usr/bin/python3', [script, '--photos', 'test/fixtures/photos', '--out', out], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
    writeFileSync(stamp, hash + '\n');
  }
}

const script = 'scripts/make_fixtures.py';
const stamp = 'test/fixtures/stamp.txt';
const hash = createHash('sha256').update(readFileSync(script)).digest('hex');
if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === hash) process.exit(0);
if (process.env.RESNET_NO_TORCH_FIXTURES === '1') {
  console.log('RESNET_NO_TORCH_FIXTURES=1: not making PyTorch fixtures (parity tests will skip)');
  process.exit(0);
}
const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
if (probe.status !== 0) {
  console.error('error: the parity fixtures need Debian\'s python3-torch and python3-torchvision: run `bash scripts/install-test-deps.sh` (or set RESNET_NO_TORCH_FIXTURES=1 to skip those tests)');
  process.exit(1);
}
console.log('making PyTorch fixtures (scripts/make_fixtures.py) …');
const r = spawnSync('/usr/bin/python3', [script, '--out', 'test/fixtures'], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(stamp, hash + '\n');
