// `resnet eval`: accuracy, loss, top-5, per-class accuracy and the confusion matrix of a
// checkpoint or weight set (--weights, the shared rule) on Fashion-MNIST's test set, an image
// folder (ImageNet-style: synset-id or class-name folders), or the validation split it was trained with.
import type { Command } from 'commander';
import { ConfigError } from '../base/errors.js';
import type { Dataset } from '../data/dataset.js';
import type { Printer } from './train.js';
import { parsePositiveInt } from './util.js';

export function addEvalOptions(c: Command): Command {
  return c
    .option('--weights <id|file>', 'a weight id (resnet50.IMAGENET1K_V2, downloaded once), a checkpoint, or bare weights (with --model)')
    .option('--checkpoint <path>', 'same as --weights (default runs/fashion-mnist-28)')
    .option('--model <name>', 'model name, for bare weights without a sidecar')
    .option('--cache-dir <dir>', 'download folder for pretrained weights')
    .option('--images <dir>', 'evaluate on this image folder (one sub-folder per class: class names, or ImageNet synset ids such as n01440764)')
    .option('--data-dir <dir>', 'where Fashion-MNIST is (for Fashion-MNIST checkpoints)')
    .option('--limit-test <n>', 'only the first n images', parsePositiveInt('--limit-test'))
    .option('--batch-size <n>', 'batch size (default 256)', parsePositiveInt('--batch-size'))
    .option('--tta <kind>', 'test-time augmentation: none or flip (default: what the checkpoint was trained with)')
    .option('--confusion', 'print per-class accuracy and the confusion matrix')
    .option('--strict-finite', 'refuse weights holding NaN or Inf (default: a warning)')
    .option('--json', 'print one JSON object')
    .option('--no-progress', 'no progress bar');
}

export interface EvalFlags {
  weights?: string;
  checkpoint?: string;
  model?: string;
  cacheDir?: string;
  images?: string;
  dataDir?: string;
  limitTest?: number;
  batchSize?: number;
  confusion?: boolean;
  json?: boolean;
  progress?: boolean;
  tta?: string;
  strictFinite?: boolean;
}

export async function runEval(f: EvalFlags, print: Printer, err: Printer): Promise<number> {
  const { loadInferenceModel, classFolderIndex } = await import('../train/inference.js');
  const { weightsFlag } = await import('./predict.js');
  const { progressBar } = await import('./weights.js');
  const { DataLoader } = await import('../data/loader.js');
  await import('../data/loader-pool.js'); // worker threads for the loader
  const { Subset } = await import('../data/dataset.js');
  const { evaluate } = await import('../train/trainer.js');
  const { formatConfusion, formatLoss } = await import('../train/metrics.js');
  const { ProgressPrinter } = await import('../train/progress.js');
  const { checkTta } = await import('../train/config.js');
  const spec = weightsFlag(f);
  const m = await loadInferenceModel(spec, {
    model: f.model,
    cacheDir: f.cacheDir,
    onProgress: progressBar('downloading'),
    strictFinite: f.strictFinite,
    onWarning: (w) => err(`warning: ${w}`),
  });
  const cfg = (m.meta?.config ?? {}) as { data?: { kind?: string; root?: string; valRoot?: string; valSplit?: number }; seed?: number; tta?: string };
  const tta = checkTta(f.tta ?? cfg.tta ?? 'none');
  let ds: Dataset;
  let name = 'test';
  let where: string;
  if (f.images) {
    const { ImageFolder } = await import('../data/image-folder.js');
    const folder = ImageFolder.open(f.images, { mode: m.input.mode, minClasses: 1 });
    const remap = folder.classes.map((c) => classFolderIndex(c, m.classes));
    const unknown = folder.classes.filter((_, i) => remap[i] < 0);
    if (unknown.length) {
      const shown =
        m.classes.length > 20
          ? `${m.classes.slice(0, 5).join(', ')}, … (${m.classes.length} classes${m.classes.length === 1000 ? ', or ImageNet synset ids' : ''})`
          : m.classes.join(', ');
      throw new ConfigError(
        `${f.images}: class folder(s) ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', …' : ''} are not classes of the model (${shown})`,
      );
    }
    ds = {
      length: folder.length,
      classes: m.classes,
      get: async (i: number) => {
        const s = await folder.get(i);
        return { image: s.image, label: remap[s.label] };
      },
      label: (i: number) => remap[folder.label(i)],
    };
    where = folder.describe();
  } else if (cfg.data?.kind === 'fashion-mnist' || (!m.meta && m.input.channels === 1)) {
    const { loadFashionMNIST } = await import('../data/fashion-mnist.js');
    const fm = await loadFashionMNIST({ dataDir: f.dataDir, onWarning: (w) => err(`warning: ${w}`) });
    ds = fm.test;
    where = `Fashion-MNIST test set (${fm.source}: ${fm.dir})`;
  } else if (cfg.data?.kind === 'image-folder' && cfg.data.root) {
    const { ImageFolder } = await import('../data/image-folder.js');
    if (cfg.data.valRoot) {
      ds = ImageFolder.open(cfg.data.valRoot, { mode: m.input.mode });
      where = cfg.data.valRoot;
    } else if (cfg.data.valSplit && cfg.data.valSplit > 0) {
      ds = ImageFolder.open(cfg.data.root, { mode: m.input.mode }).split(cfg.data.valSplit, cfg.seed ?? 0).val;
      where = `the validation split (${cfg.data.valSplit}) of ${cfg.data.root}`;
    } else {
      throw new ConfigError(`${spec} was trained without a validation set: pass --images DIR`);
    }
    name = 'val';
  } else {
    throw new ConfigError('nothing to evaluate on: pass --images DIR');
  }
  if (f.limitTest && f.limitTest < ds.length)
    ds = new Subset(
      ds,
      Int32Array.from({ length: f.limitTest }, (_, i) => i),
    );
  if (!m.evalTransform) throw new ConfigError(`${m.weightsFile} has no sidecar with its preprocessing; evaluate a resnet-ts checkpoint`);
  const loader = new DataLoader(ds, { batchSize: f.batchSize ?? 256, transform: m.evalTransform, numWorkers: f.images ? 'auto' : 0 });
  const hooks = f.progress === false ? undefined : new ProgressPrinter({ stream: process.stderr, print: err });
  if (f.progress !== false) err(`evaluating ${m.weightsFile} on ${where} (${ds.length} images)`);
  const { NonFiniteOutputError } = await import('../train/trainer.js');
  let r;
  try {
    r = await evaluate(m.model, loader, { numClasses: m.classes.length, hooks, label: name, tta });
  } catch (e) {
    if (e instanceof NonFiniteOutputError) throw new NonFiniteOutputError(`${m.weightsFile}: ${e.message}`);
    throw e;
  } finally {
    await loader.close();
  }
  if (f.json) {
    // per-class figures and the confusion matrix of 1000 ImageNet classes (2 MB) only on request
    const perClass =
      f.confusion || m.classes.length <= 100
        ? { perClassAcc: Object.fromEntries(m.classes.map((c, i) => [c, r.perClassAcc[i]])), confusion: r.confusion, classes: m.classes }
        : {};
    print(
      JSON.stringify({
        checkpoint: m.weightsFile,
        ...(m.pretrained ? { weights: m.pretrained.id } : {}),
        set: name,
        count: r.count,
        acc: r.acc,
        loss: r.loss,
        topk: r.topk,
        k: r.k,
        tta,
        ...(r.accNoTta !== undefined ? { accNoTta: r.accNoTta } : {}),
        ...perClass,
        seconds: r.seconds,
      }),
    );
    return 0;
  }
  if (f.confusion) {
    print(formatConfusion(r, m.classes));
    print(m.classes.map((c, i) => `${i}=${c}`).join('  '));
  }
  print(
    `${name}_acc=${r.acc.toFixed(4)} ${name}_loss=${formatLoss(r.loss)} ${name}_top${r.k}=${r.topk.toFixed(4)} n=${r.count}` +
      (r.accNoTta !== undefined ? ` tta=${tta} ${name}_acc_no_tta=${r.accNoTta.toFixed(4)}` : ''),
  );
  return 0;
}
