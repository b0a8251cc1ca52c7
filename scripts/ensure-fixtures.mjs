// Runs before `npm test`: (re)makes the PyTorch fixtures in test/fixtures when they are missing
// or were made by another version of scripts/make_fixtures.py (hash recorded in stamp.txt).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

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
