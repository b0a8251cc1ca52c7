// Optimizers, learning-rate schedules and gradient clipping.
export { Optimizer, type AnyOptimizer, type OptimizerStateDict, type ParamGroup, type ParamGroupSpec, type ParamInput, type Hyper } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions, type AdamInit } from './adam.js';
export {
  LRScheduler,
  chainLR,
  constantLR,
  cosineLR,
  linearLR,
  multiStepLR,
  oneCycleLR,
  sequentialLR,
  stepLR,
  withWarmup,
  type OneCycleOptions,
  type Schedule,
  type SchedulerState,
} from './schedule.js';
export { clipGradNorm } from './clip.js';
