// Training events: what the trainer reports through the hooks it is given (library code never
// writes to the console). Browser-safe types only; the console reporter is progress.ts (Node).
export interface EpochStartInfo {
  phase: 'train' | 'eval';
  epoch: number; // 1-based
  epochs: number;
  steps: number;
  /** Step to start from (resume mid-epoch). */
  startStep: number;
  label?: string;
}

export interface StepInfo {
  phase: 'train' | 'eval';
  epoch: number;
  epochs: number;
  step: number; // 1-based, steps done in this epoch
  steps: number;
  loss: number; // running mean over the epoch
  acc: number; // running top-1 over the epoch
  lr: number;
  imagesPerSec: number;
  /** Seconds left in this epoch/pass. */
  etaSec: number;
}

export interface EpochRecord {
  epoch: number;
  train_loss: number;
  train_acc: number;
  val_loss?: number;
  val_acc?: number;
  val_top5?: number;
  lr: number;
  epoch_time_s: number;
  images_per_s: number;
  [k: string]: unknown;
}

export interface TrainHooks {
  onEpochStart?(info: EpochStartInfo): void;
  onStep?(info: StepInfo): void;
  onPhaseEnd?(phase: 'train' | 'eval'): void;
  onEpochEnd?(rec: EpochRecord): void;
  /** Human-readable notes (checkpoint written, resumed, warnings). */
  onMessage?(msg: string): void;
}
