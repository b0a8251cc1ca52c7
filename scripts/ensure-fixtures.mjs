// Runs before `npm test`: (re)makes the PyTorch fixtures in test/fixtures when they are missing
// or were made by another version of their script (hash of the script and what it imports,
// recorded in a stamp file per script).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

// [script, stamp, other files it imports]
const JOBS = [
  ['scripts/make_fixtures.py', 'test/fixtures/stamp.txt', []],
  ['scripts/make_resnet_d_fixtures.py', 'test/fixtures/resnet50_avgdown/stamp.txt', ['scripts/make_fixtures.py']],
];

const hashOf = (files) => {
  const h = createHash('sha256');
  for (const f of files) h.update(readFileSync(f));
  return h.digest('hex');
};
const todo = JOBS.filter(([script, stamp, deps]) => !existsSync(stamp) || readFileSync(stamp, 'utf8').trim() !== hashOf([script, ...deps]));
if (!todo.length) process.exit(0);
if (process.env.RESNET_NO_TORCH_FIXTURES === '1') {
  console.log('RESNET_NO_TORCH_FIXTURES=1: not making PyTorch fixtures (parity tests will skip)');
  process.exit(0);
}
const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
if (probe.status !== 0) {
  console.error('error: the parity fixtures need Debian\'s python3-torch and python3-torchvision: run `bash scripts/install-test-deps.sh` (or set RESNET_NO_TORCH_FIXTURES=1 to skip those tests)');
  process.exit(1);
}
for (const [script, stamp, deps] of todo) {
  console.log(`making PyTorch fixtures (${script}) …`);
  const r = spawnSync('/usr/bin/python3', [script, '--out', 'test/fixtures'], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  writeFileSync(stamp, hashOf([script, ...deps]) + '\n');
}
