// `resnet finetune`: pretrained weights (a .safetensors/.pth/.npz file or a checkpoint of ours),
// a new head for the classes of an image folder, optional freezing, a larger lr for the head.
import type { Command } from 'commander';
import { ConfigError } from '../base/errors.js';
import { addTrainingOptions, runTrainCommand, type Printer, type TrainFlags } from './train.js';

export function addFinetuneOptions(c: Command): Command {
  return addTrainingOptions(c, { preset: 'imagefolder' })
    .option('--images <dir>', 'training images, one sub-folder per class')
    .option('--val-images <dir>', 'validation images (default: a --val-split of --images)')
    .option('--weights <file|id>', 'pretrained weights: an id such as resnet18.IMAGENET1K_V1 (downloaded once), a .safetensors/.pth/.npz file, or a resnet-ts checkpoint')
    .option('--checkpoint <path>', 'same as --weights, for a checkpoint of an earlier run')
    .option('--freeze <what>', 'none, backbone, stem or layerN (frozen BatchNorm stays in eval mode)')
    .option('--head-lr-mult <x>', 'learning-rate multiplier of the new head (default 10)', (s: string) => {
      const v = Number(s);
      if (!(v > 0)) throw new ConfigError(`--head-lr-mult must be positive, got '${s}'`);
      return v;
    })
    .option('--keep-head', 'keep the pretrained head when it fits the new classes')
    .option('--strict-finite', 'refuse pretrained weights holding NaN or Inf (default: a warning)');
}

export function runFinetune(f: TrainFlags, print: Printer, err: Printer): Promise<number> {
  if (!f.images && !f.resume) throw new ConfigError('finetune needs --images DIR (one sub-folder per class)');
  return runTrainCommand(f, print, err, { task: 'finetune', defaultPreset: 'imagefolder' });
}
