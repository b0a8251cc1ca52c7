#!/usr/bin/env node
// The `resnet` command. The only place that parses flags and touches process and the console.
import { Command, CommanderError } from 'commander';
import { ResnetError } from '../base/errors.js';
import { setBackend } from '../backend/registry.js';
import { setThreads } from '../backend/wasm/index.js';
import { listModels, MODELS } from '../models/registry.js';
import { parsePositiveInt } from './util.js';

const print = (s: string) => process.stdout.write(s + '\n');

export function buildProgram(): Command {
  const program = new Command();
  program.name('resnet').description('ResNet image classifiers in TypeScript: define, train, fine-tune, run, inspect, convert')
    .version('0.1.0').exitOverride().showHelpAfterError(false)
    .option('--backend <name>', 'compute backend: wasm (SIMD128, threads) or ref (plain TypeScript, the oracle)', 'wasm')
    .option('--threads <n>', 'threads for the wasm backend (default: the machine\'s cores)', parsePositiveInt('--threads'));
  program.hook('preAction', async (cmd) => {
    const o = cmd.optsWithGlobals() as { backend?: string; threads?: number };
    if (o.threads !== undefined) await setThreads(o.threads);
    await setBackend(o.backend ?? 'wasm');
  });

  program.command('models').description('list the model names').action(() => {
    for (const m of MODELS) print(`${m.name.padEnd(18)} ${m.description}`);
  });

  program.command('info').description('layer-by-layer output shapes, parameters and MACs')
    .argument('<model>', `one of: ${listModels().join(', ')}`)
    .option('--input <CxHxW>', 'input size, e.g. 3x224x224 (default: the model\'s)')
    .option('--arch <json>', 'constructor options as JSON, e.g. \'{"numClasses":7}\' (or @file.json)')
    .option('--json', 'print one JSON object instead of a table')
    .action(async (model: string, o) => (await import('./info.js')).runInfo(model, o, print));

  program.command('forward').description('run a model on an .npy batch and write the logits as .npy')
    .requiredOption('--model <name>', 'model name')
    .option('--weights <file>', 'torchvision-named weights (.safetensors)')
    .requiredOption('--input <file>', 'input batch [N, C, H, W] as .npy (float32)')
    .requiredOption('--output <file>', 'where to write the logits (.npy)')
    .option('--arch <json>', 'constructor options as JSON (or @file.json)')
    .option('--train-mode', 'run in training mode (batch statistics in BatchNorm)')
    .action(async (o) => (await import('./forward.js')).runForward(o, print));

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode; // commander already printed its message
    if (e instanceof ResnetError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
    process.stderr.write(`internal error: ${(e as Error).stack ?? e}\n`);
    process.exit(70);
  });
}
