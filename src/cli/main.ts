#!/usr/bin/env node
// The `resnet` command. The only place that parses flags and touches process and the console.
import { availableParallelism } from 'node:os';
import { Command, CommanderError } from 'commander';
import { ResnetError } from '../base/errors.js';
import { setBackend } from '../backend/registry.js';
import { setThreads } from '../backend/wasm/settings.js';
import '../backend/webgpu/node.js'; // --backend webgpu: WebGPU through the optional package `webgpu`
import { SOFTWARE_ADAPTER } from '../backend/webgpu/device.js';
import type { WebGpuBackend } from '../backend/webgpu/webgpu.js';
import { listModels, MODELS } from '../models/registry.js';
import { parsePositiveInt } from './util.js';
import { addDemoOptions } from './demo.js';
import { addEvalOptions } from './eval.js';
import { addFinetuneOptions } from './finetune.js';
import { addPredictOptions } from './predict.js';
import { addTrainingOptions } from './train.js';
import { OptionError, optionFlag } from '../train/options.js';

const print = (s: string) => process.stdout.write(s + '\n');
const printErr = (s: string) => process.stderr.write(s + '\n');

/** Exit status of a command that reported its own errors (predict: some files failed). */
let status = 0;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('resnet')
    .description('ResNet image classifiers in TypeScript: define, train, fine-tune, run, inspect, convert')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError(false)
    .option(
      '--backend <name>',
      'compute backend: wasm (SIMD128, threads), webgpu (the GPU; needs the optional package `webgpu`) or ref (plain TypeScript, the oracle)',
      'wasm',
    )
    .option('--threads <n>', "threads for the wasm backend (default: the machine's cores)", parsePositiveInt('--threads'));
  program.hook('preAction', async (cmd) => {
    const o = cmd.optsWithGlobals() as { backend?: string; threads?: number };
    if (o.threads !== undefined) {
      // More threads than cores only adds switching (1000 meant ~75 OS threads on 2 cores).
      const cores = availableParallelism();
      if (o.threads > cores) printErr(`warning: --threads ${o.threads} is more than the machine's ${cores} cores; using ${cores}`);
      await setThreads(Math.min(o.threads, cores));
    }
    const backend = await setBackend(o.backend ?? 'wasm');
    // which adapter WebGPU gave, once, on stderr (stdout may be a machine-read result)
    if (backend.name === 'webgpu') {
      const d = (backend as WebGpuBackend).adapterDescription;
      printErr(`webgpu adapter: ${d}${SOFTWARE_ADAPTER.test(d) ? ' (a software renderer on the CPU: correct but slow, not a GPU)' : ''}`);
    }
  });

  program
    .command('models')
    .description('list the model names')
    .action(() => {
      for (const m of MODELS) print(`${m.name.padEnd(18)} ${m.description}`);
    });

  program
    .command('info')
    .description('layer-by-layer output shapes, parameters and MACs')
    .argument('<model>', `one of: ${listModels().join(', ')}`)
    .option('--input <CxHxW>', "input size, e.g. 3x224x224 (default: the model's)")
    .option('--arch <json>', 'constructor options as JSON, e.g. \'{"numClasses":7}\' (or @file.json)')
    .option('--json', 'print one JSON object instead of a table')
    .action(async (model: string, o) => (await import('./info.js')).runInfo(model, o, print));

  const weightsHelp =
    'a weight id such as resnet50.IMAGENET1K_V2 (downloaded once), a resnet-ts checkpoint, or torchvision-named weights (.safetensors, .pth, .npz; with --model)';
  program
    .command('forward')
    .description('run a model on an .npy batch and write the logits as .npy')
    .option('--model <name>', 'model name (random weights without --weights; needed for bare weights)')
    .option('--weights <id|file>', weightsHelp)
    .requiredOption('--input <file>', 'input batch [N, C, H, W] as .npy (float32)')
    .requiredOption('--output <file>', 'where to write the logits (.npy)')
    .option('--arch <json>', 'constructor options as JSON (or @file.json)')
    .option('--train-mode', 'run in training mode (batch statistics in BatchNorm)')
    .option('--cache-dir <dir>', 'download folder for pretrained weights')
    .option('--strict-finite', 'refuse weights holding NaN or Inf (default: a warning)')
    .action(async (o) => (await import('./forward.js')).runForward(o, print));

  program
    .command('export')
    .description('write a model with its weights as ONNX (dynamic batch, opset >= 13)')
    .option('--model <name>', 'model name (random weights without --weights; needed for bare weights)')
    .option('--arch <json>', 'constructor options as JSON (or @file.json)')
    .option('--weights <id|file>', weightsHelp)
    .requiredOption('--onnx <file>', 'where to write the .onnx file')
    .option('--input <CxHxW>', "input size (default: the model's)")
    .option('--opset <n>', 'ONNX opset, 13 to 21', '13')
    .option('--static-batch', 'fix the batch dimension to 1 instead of a symbolic "batch"')
    .option('--dynamic-size', 'make height and width symbolic too')
    .option('--verify', 'run the file in onnxruntime-node and compare with our forward')
    .option('--cache-dir <dir>', 'download folder for pretrained weights')
    .option('--strict-finite', 'refuse weights holding NaN or Inf (default: a warning)')
    .action(async (o) => (await import('./export.js')).runExport(o, print));

  program
    .command('import')
    .description('recognise a ResNet ONNX graph (torch.onnx.export or ours) and extract its weights')
    .argument('<model.onnx>', 'the ONNX file')
    .option('--out <file>', 'write the weights (torchvision key names) as .safetensors')
    .option('--json', 'print one JSON object')
    .action(async (file: string, o) => (await import('./import.js')).runImport(file, o, print));

  program
    .command('convert')
    .description('convert weights between .pth, .safetensors, .npz (and .onnx as input)')
    .argument('<in>', '.pth/.pt, .safetensors, .npz, .npy or .onnx')
    .argument('<out>', '.safetensors, .npz, or a folder ending in / (one .npy per tensor)')
    .option('--key <name>', 'take the state dict from this key of a .pth checkpoint')
    .option('--keep-module-prefix', 'keep a DataParallel "module." prefix')
    .option('--model <name>', 'check that the tensors load into this model before writing')
    .option('--arch <json>', 'constructor options for --model')
    .option('--compress', 'deflate the .npz entries')
    .action(async (i: string, out: string, o) => (await import('./convert.js')).runConvert(i, out, o, print));

  program
    .command('weights')
    .description('list the pretrained weight sets (torchvision ImageNet-1k), or download one')
    .option('--model <name>', "only this model's weights")
    .option('--json', 'print JSON')
    .option('--download <id>', 'download (once, hash-checked) into the cache, e.g. resnet50.IMAGENET1K_V2')
    .option('--cache-dir <dir>', 'download folder (default $RESNET_TS_CACHE or ~/.cache/resnet-ts/weights)')
    .action(async (o) => (await import('./weights.js')).runWeights(o, print));

  addTrainingOptions(program.command('train').description('train a model (default preset fashion-mnist-28); ends with test_acc=… test_loss=…'), {
    preset: 'fashion-mnist-28',
    command: 'train',
  }).action(async (o) => {
    await (await import('./train.js')).runTrainCommand(o, print, printErr, { task: 'train', defaultPreset: 'fashion-mnist-28' });
  });

  addFinetuneOptions(program.command('finetune').description('fine-tune pretrained weights on an image folder with a new head')).action(async (o) => {
    await (await import('./finetune.js')).runFinetune(o, print, printErr);
  });

  addEvalOptions(program.command('eval').description('accuracy, loss, top-5, per-class accuracy and confusion matrix of a checkpoint')).action(async (o) => {
    await (await import('./eval.js')).runEval(o, print, printErr);
  });

  addPredictOptions(program.command('predict').description('top-k classes of an image or of every image in a folder')).action(async (path: string, o) => {
    status = await (await import('./predict.js')).runPredict(path, o, print, printErr);
  });

  program
    .command('embed')
    .description('features of images (default: the pooled penultimate layer), one row per image, as .npy with the file names beside it')
    .argument('<images...>', 'image files and/or folders (walked recursively)')
    .option('--weights <id|file>', weightsHelp)
    .option('--model <name>', 'model name, for bare weights without a sidecar')
    .requiredOption('--out <file.npy>', 'where to write the features; the file names go to <file>.files.txt')
    .option('--layer <name>', 'pool (the embedding fc sees), stem, layer1…layer4 (layer3 for CIFAR ResNets) or logits', 'pool')
    .option('--batch-size <n>', 'images per batch', parsePositiveInt('--batch-size'), 32)
    .option('--cache-dir <dir>', 'download folder for pretrained weights')
    .option('--no-progress', 'no progress lines')
    .action(async (paths: string[], o) => {
      await (await import('./embed.js')).runEmbed(paths, o, print, printErr);
    });

  program
    .command('presets')
    .description('list the training presets')
    .action(async () => {
      const { PRESETS } = await import('./presets.js');
      for (const [name, p] of Object.entries(PRESETS)) print(`${name.padEnd(18)} ${p.description}`);
    });

  addDemoOptions(program.command('demo').description('train a ResNet on Fashion-MNIST for a couple of minutes, then predict a few test images')).action(
    async (o) => {
      await (await import('./demo.js')).runDemo(o, print, printErr);
    },
  );

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    status = 0;
    await program.parseAsync(argv, { from: 'user' });
    return status;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode; // commander already printed its message
    if (e instanceof ResnetError) {
      // a training option's error names the option; here it names the flag
      const flag = e instanceof OptionError && optionFlag(e.option);
      process.stderr.write(`error: ${flag ? `${flag} ${(e as OptionError).detail}` : e.message}\n`);
      return 1;
    }
    throw e;
  }
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`internal error: ${(e as Error).stack ?? e}\n`);
      process.exit(70);
    },
  );
}
