// `resnet finetune`: pretrained weights (a .safetensors/.pth/.npz file or a checkpoint of ours),
// a new head for the classes of an image folder, optional freezing, a larger lr for the head.
import type { Command } from 'commander';
import { ConfigError } from '../base/errors.js';
import { addTrainingOptions, runTrainCommand, type Printer, type TrainFlags } from './train.js';

export function addFinetuneOptions(c: Command): Command {
  return addTrainingOptions(c, { preset: 'imagefolder', command: 'finetune' }).option(
    '--checkpoint <path>',
    'same as --weights, for a checkpoint of an earlier run',
  );
}

export function runFinetune(f: TrainFlags, print: Printer, err: Printer): Promise<number> {
  if (!f.images && !f.resume) throw new ConfigError('finetune needs --images DIR (one sub-folder per class)');
  return runTrainCommand(f, print, err, { task: 'finetune', defaultPreset: 'imagefolder' });
}
