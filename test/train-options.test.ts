// The table of training options (src/train/options.ts): the CLI flags, defaults, validation and
// resume rules it derives, and that library errors name options while the CLI names flags.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildProgram, main } from '../src/cli/main.js';
import {
  DEFAULT_CONFIG,
  OptionError,
  TRAIN_OPTIONS,
  applyResumeOverrides,
  optionFlag,
  optionNames,
  parseOption,
  resumeOverrides,
  validateConfig,
  type TrainConfig,
} from '../src/train/options.js';

const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({ ...structuredClone(DEFAULT_CONFIG), model: 'cifar_resnet8', out: 'runs/x', ...over });

test('every option with a flag is a flag of the commands the table names, and nothing else is', () => {
  const program = buildProgram();
  for (const command of ['train', 'finetune'] as const) {
    const flags = new Set(program.commands.find((c) => c.name() === command)!.options.map((o) => o.long));
    for (const k of optionNames()) {
      const flag = optionFlag(k);
      const cmds: readonly string[] = (TRAIN_OPTIONS[k] as { commands?: readonly string[] }).commands ?? ['train', 'finetune'];
      assert.equal(flag !== null && flags.has(flag), flag !== null && cmds.includes(command), `${command} ${k} ${flag}`);
    }
  }
});

test('defaults: what DEFAULT_CONFIG held before the table, and they validate', () => {
  assert.deepEqual(DEFAULT_CONFIG, {
    task: 'train',
    arch: {},
    freeze: 'none',
    epochs: 10,
    batchSize: 128,
    optimizer: 'sgd',
    lr: 0.05,
    momentum: 0,
    nesterov: false,
    weightDecay: 0,
    noWdBnBias: true,
    headLrMult: 1,
    schedule: 'none',
    warmupEpochs: 0,
    labelSmoothing: 0,
    ema: 0,
    clipGradNorm: null,
    seed: 0,
    workers: 'auto',
    saveFormat: 'safetensors',
    data: { kind: 'fashion-mnist', valSplit: 0, size: 28, augment: 'none', normalize: 'none' },
  });
  validateConfig(config());
});

test('library errors name the option (its config path)', () => {
  assert.throws(
    () => validateConfig(config({ batchSize: 0 })),
    (e) => e instanceof OptionError && e.option === 'batchSize' && e.message === 'batchSize must be a positive integer, got 0',
  );
  assert.throws(() => validateConfig(config({ data: { ...DEFAULT_CONFIG.data, size: 2.5 } })), /data\.size must be a positive integer, got 2\.5$/);
  assert.throws(() => validateConfig(config({ optimizer: 'rmsprop' as never })), /optimizer must be sgd, adam or adamw, got 'rmsprop'$/);
  assert.throws(() => validateConfig(config({ schedule: 'onecycle', warmupEpochs: 1 })), /warmupEpochs must be 0 with the onecycle schedule/);
  assert.throws(() => validateConfig(config({ data: { ...DEFAULT_CONFIG.data, kind: 'image-folder' } })), /data\.root is needed for an image-folder run/);
  assert.throws(() => validateConfig(config({ workers: -1 })), /workers must be a non-negative integer or 'auto', got -1$/);
  assert.throws(() => validateConfig(config({ clipGradNorm: 0 })), /clipGradNorm must be a positive number, got 0$/);
  validateConfig(config({ clipGradNorm: null, workers: 0, milestones: [3, 6] }));
});

test('flag text parses by the option type', () => {
  assert.deepEqual(parseOption('milestones', '30, 60'), [30, 60]);
  assert.equal(parseOption('workers', 'auto'), 'auto');
  assert.equal(parseOption('workers', '3'), 3);
  assert.equal(parseOption('lr', '1e-3'), 0.001);
  assert.throws(() => parseOption('lr', ''), /lr must be a positive number, got ''$/);
  assert.throws(() => parseOption('epochs', '2.5'), /epochs must be a positive integer, got 2\.5$/);
  assert.throws(() => parseOption('milestones', '3,x'), /milestones must be a comma-separated list of non-negative integers, got '3,x'$/);
  assert.throws(() => parseOption('arch', '[1]'), /arch must be an object, got \[1\]$/);
});

test('resume rules: only the options marked resume may be given, and epochs not under a laid-out schedule', () => {
  assert.deepEqual(resumeOverrides({ epochs: 4, workers: 0, out: 'o', data: { dataDir: 'd' } }), { epochs: 4, workers: 0, out: 'o', dataDir: 'd' });
  assert.throws(
    () => resumeOverrides({ lr: 0.1, data: {} }),
    /lr cannot change on resume: .*only --epochs, --workers, --out, --save-format or --data-dir may be given/,
  );
  assert.throws(() => resumeOverrides({ data: { size: 32 } }), /data\.size cannot change on resume/);
  const c = config({ schedule: 'step' });
  applyResumeOverrides(c, { epochs: 12, dataDir: '/d' });
  assert.equal(c.epochs, 12);
  assert.equal(c.data.dataDir, '/d');
  assert.throws(() => applyResumeOverrides(config({ schedule: 'cosine' }), { epochs: 12 }), /epochs cannot change on resume with the cosine schedule/);
});

test('the CLI names the flag instead of the option', async () => {
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = (s: string | Uint8Array) => lines.push(String(s)) > 0;
  try {
    assert.equal(await main(['train', '--batch-size', '0']), 1);
    assert.equal(await main(['finetune', '--images', 'x', '--val-split', '1']), 1);
    assert.equal(await main(['train', '--resume', 'nowhere', '--size', '32']), 1);
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(
    lines.filter((l) => l.startsWith('error:')),
    [
      'error: --batch-size must be a positive integer, got 0\n',
      'error: --val-split must be a number in [0, 1), got 1\n',
      'error: --size cannot change on resume: the run continues with the config saved in its checkpoint (only --epochs, --workers, --out, --save-format or --data-dir may be given)\n',
    ],
  );
});
