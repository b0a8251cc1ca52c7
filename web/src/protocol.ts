// Messages between the page and the engine worker (web/src/worker.ts). Every request carries an id;
// the worker answers { id, ok, result } or { id, ok: false, error }. Training also sends events.

/** An image as the page decodes it: RGBA pixels, row-major. */
export interface Rgba {
  data: Uint8ClampedArray;
  w: number;
  h: number;
}

export type WeightsSource =
  { kind: 'none' } | { kind: 'files'; files: { name: string; bytes: Uint8Array }[] } | { kind: 'pretrained'; id: string; baseUrl?: string };

export interface LoadRequest {
  model: string;
  /** Extra constructor options (JSON), e.g. {"numClasses": 10}. */
  arch: Record<string, unknown>;
  weights: WeightsSource;
}

export interface ModelSummary {
  name: string;
  params: number;
  classes: number;
  input: { c: number; h: number; w: number; mode: 'gray' | 'rgb' };
  weights: string;
  note: string;
}

export interface Top {
  index: number;
  label: string;
  prob: number;
}

export interface ClassifyResult {
  top: Top[];
  ms: number;
  backend: string;
  threads: number;
}

export interface TrainSettings {
  /** 'slice': the embedded Fashion-MNIST slice; 'idx': dropped IDX files; 'folder': dropped images. */
  data:
    | { kind: 'slice'; baseUrl: string }
    | { kind: 'idx'; files: { name: string; bytes: Uint8Array }[] }
    | { kind: 'folder'; images: { label: string; rgba: Rgba }[] };
  /** CIFAR ResNet depth (6n+2) and stage width. */
  depth: number;
  width: number;
  size: number;
  batchSize: number;
  steps: number;
  lr: number;
  seed: number;
}

export interface TrainStepEvent {
  type: 'step';
  step: number;
  steps: number;
  loss: number;
  acc: number;
  etaSec: number;
  imagesPerSec: number;
}

export interface TrainDoneEvent {
  type: 'done';
  steps: number;
  testAcc: number | null;
  testCount: number;
  classes: string[];
  seconds: number;
}

export type TrainEvent =
  | TrainStepEvent
  | TrainDoneEvent
  | { type: 'info'; text: string }
  | { type: 'error'; error: string }
  | { type: 'progress'; received: number; total: number | null };

export interface Request {
  id: number;
  op: string;
  args?: unknown;
}

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string } | { event: TrainEvent };
