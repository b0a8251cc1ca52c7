// The Backend interface: storage plus compute kernels over it.
//
// A buffer is an opaque Storage handle owned by the backend that made it: only that backend
// looks inside, and values cross the seam only through write(), read() and readSync(). That
// is what lets a backend keep its memory where JavaScript cannot see it (a GPU). The ref
// backend's storage is an ordinary Float32Array; the wasm backend's is a block (offset, length)
// of its WebAssembly.Memory, which a Float32Array view cannot stand for: an unshared memory
// detaches every view when it grows. RefBackend's kernels reach their floats through one
// accessor, view(), so wasm overrides only the kernels it accelerates and inherits the rest
// from RefBackend, whose kernels are the oracle for every backend.
//
// Conventions: tensors are contiguous row-major; images are NCHW; conv weights are
// [K, C/groups, R, S] (PyTorch's OIHW). Output buffers are fully overwritten unless a kernel
// says it accumulates. Kernels never allocate tensors and never import tensor/.

export interface Conv2dParams {
  N: number;
  C: number;
  H: number;
  W: number; // input
  K: number;
  R: number;
  S: number; // out channels, kernel height, kernel width
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  dilH: number;
  dilW: number;
  groups: number;
  OH: number;
  OW: number; // output spatial size
}

export interface Pool2dParams {
  N: number;
  C: number;
  H: number;
  W: number;
  kH: number;
  kW: number;
  sH: number;
  sW: number;
  pH: number;
  pW: number;
  dH: number;
  dW: number; // dilation (max pool only; avg pool uses 1)
  OH: number;
  OW: number;
  countIncludePad: boolean; // avg pool only
}

export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'abs' | 'relu' | 'sigmoid' | 'tanh';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min';

/** A backend's handle to `length` floats. Opaque: only the backend that allocated it reads it. */
export interface Storage {
  readonly length: number;
}

export interface Backend {
  readonly name: string;
  /** True once dispose() made the backend unusable (webgpu); setBackend then makes a new one. */
  readonly disposed?: boolean;

  // ---- storage ----
  /** A zero-filled buffer of n floats. */
  alloc(n: number): Storage;
  /** Return a buffer from alloc() to the backend. Using it afterwards is undefined. */
  free(buf: Storage): void;
  /** Floats currently allocated (for leak tests). */
  allocatedFloats(): number;
  /**
   * A hint that about `bytes` bytes in all will be in use soon (live tensors included): a backend
   * with a growing heap may grow it once now rather than step by step (wasm: memory.ts reserve).
   */
  reserve?(bytes: number): void;
  /**
   * A byte area in the backend's own memory to read host data into (a weights file about to be
   * loaded into tensors), or null. release() gives it back to the backend's allocator, which then
   * reuses those pages for tensors (wasm: no second set of fresh pages for the weights' transforms
   * and the first activations); views of the area are invalid after it.
   */
  stagingBytes?(bytes: number): { bytes: Uint8Array; release(): void } | null;
  /** dst[offset + i] = values[i] (upload). */
  write(dst: Storage, values: ArrayLike<number>, offset?: number): void;
  /** A copy of the values (download); every backend has it. */
  read(src: Storage): Promise<Float32Array>;
  /** A copy of the values, synchronously; absent where the backend cannot (a GPU's memory). */
  readSync?(src: Storage): Float32Array;
  /** dst = src (same length). */
  copy(src: Storage, dst: Storage): void;
  /** Every element of dst = value. */
  fill(dst: Storage, value: number): void;

  // ---- dense linear algebra ----
  /**
   * C[M,N] = op(A) @ op(B) (+ C when accumulate). Row-major. op(A) is [M,K]: A is stored [M,K],
   * or [K,M] when transA. op(B) is [K,N]: B is stored [K,N], or [N,K] when transB.
   */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, A: Storage, B: Storage, C: Storage, accumulate: boolean): void;

  // ---- convolution (cross-correlation, as PyTorch) ----
  /** y[N,K,OH,OW] = conv(x[N,C,H,W], w[K,C/g,R,S]) + bias[K] (bias may be null). */
  conv2d(x: Storage, w: Storage, bias: Storage | null, y: Storage, p: Conv2dParams): void;
  /**
   * Inference: y = act(conv(x, w) + bias + residual), act = ReLU when `relu`; residual (shape of y)
   * may be null. `constWeights` promises w and bias never change while allocated, so a backend may
   * keep transformed copies of them (freed with w). 'owned' promises moreover that nothing but
   * this call ever reads w again (a fused model that took the weights over): a backend may then
   * rewrite w in place into its own layout rather than keep a second copy.
   */
  conv2dFused(
    x: Storage,
    w: Storage,
    bias: Storage | null,
    y: Storage,
    p: Conv2dParams,
    relu: boolean,
    residual: Storage | null,
    constWeights: boolean | 'owned',
  ): void;
  /** dx[N,C,H,W] (overwritten) from dy[N,K,OH,OW] and w. */
  conv2dBackwardData(dy: Storage, w: Storage, dx: Storage, p: Conv2dParams): void;
  /** dw[K,C/g,R,S] (overwritten) from x and dy. */
  conv2dBackwardFilter(x: Storage, dy: Storage, dw: Storage, p: Conv2dParams): void;

  // ---- batch norm over [N,C,HW]; gamma/beta may be null (affine=false) ----
  /** Training mode: batch statistics. Writes y, saveMean[C], saveInvStd[C], and biased batch var[C] into batchVar. */
  batchNormTrain(
    x: Storage,
    gamma: Storage | null,
    beta: Storage | null,
    y: Storage,
    saveMean: Storage,
    saveInvStd: Storage,
    batchVar: Storage,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void;
  /** Eval mode: y = (x - mean) / sqrt(var + eps) * gamma + beta. */
  batchNormEval(
    x: Storage,
    gamma: Storage | null,
    beta: Storage | null,
    mean: Storage,
    variance: Storage,
    y: Storage,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void;
  /** Backward of batchNormEval with respect to x and gamma (either may be null: not wanted). */
  batchNormEvalBackward(
    dy: Storage,
    x: Storage,
    gamma: Storage | null,
    mean: Storage,
    variance: Storage,
    dx: Storage | null,
    dgamma: Storage | null,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void;
  /**
   * Running statistics after a training batch of `count` values per channel, as PyTorch:
   * mean = (1-m)*mean + m*batchMean; var = (1-m)*var + m*batchVar*count/(count-1).
   */
  batchNormUpdateStats(runningMean: Storage, runningVar: Storage, batchMean: Storage, batchVar: Storage, momentum: number, count: number): void;
  /** Backward of batchNormTrain. dgamma/dbeta (may be null) are overwritten. */
  batchNormTrainBackward(
    dy: Storage,
    x: Storage,
    gamma: Storage | null,
    saveMean: Storage,
    saveInvStd: Storage,
    dx: Storage,
    dgamma: Storage | null,
    dbeta: Storage | null,
    N: number,
    C: number,
    HW: number,
  ): void;

  // ---- pooling ----
  maxPool2d(x: Storage, y: Storage, p: Pool2dParams): void;
  /** dx (overwritten): each dy goes to the first maximum of its window (PyTorch's tie rule). */
  maxPool2dBackward(x: Storage, dy: Storage, dx: Storage, p: Pool2dParams): void;
  avgPool2d(x: Storage, y: Storage, p: Pool2dParams): void;
  avgPool2dBackward(dy: Storage, dx: Storage, p: Pool2dParams): void;
  /** PyTorch's adaptive windows: start = floor(i*H/OH), end = ceil((i+1)*H/OH). */
  adaptiveAvgPool2d(x: Storage, y: Storage, N: number, C: number, H: number, W: number, OH: number, OW: number): void;
  adaptiveAvgPool2dBackward(dy: Storage, dx: Storage, N: number, C: number, H: number, W: number, OH: number, OW: number): void;

  // ---- elementwise ----
  unary(op: UnaryOp, x: Storage, y: Storage): void;
  /** out = a op b with NumPy broadcasting; shapes are given padded to the same rank. */
  binary(op: BinaryOp, a: Storage, aShape: readonly number[], b: Storage, bShape: readonly number[], out: Storage, outShape: readonly number[]): void;
  /** y = x * alpha + beta. */
  affine(x: Storage, y: Storage, alpha: number, beta: number): void;
  /** dx = dy where y > 0 else 0 (y is relu's output; PyTorch's threshold_backward keeps NaN's gradient). */
  reluBackward(dy: Storage, y: Storage, dx: Storage): void;
  /** dx = dy * f'(x), from the input x or the output y: abs sign(x), sigmoid y(1-y), tanh 1-y². */
  unaryBackward(op: 'abs' | 'sigmoid' | 'tanh', dy: Storage, x: Storage, y: Storage, dx: Storage): void;
  /**
   * Backward of y = max(a, b) or min(a, b) (shapes padded to y's rank): da = dy where y == a
   * (a wins ties), db = dy elsewhere, both in y's shape (the caller sums them to a's and b's).
   */
  maxMinBackward(dy: Storage, a: Storage, aShape: readonly number[], y: Storage, yShape: readonly number[], da: Storage, db: Storage): void;
  /** y[cols, rows] = x[rows, cols]^T. */
  transpose2d(x: Storage, y: Storage, rows: number, cols: number): void;
  /** y += x (gradient accumulation, residual add in place). */
  addInPlace(y: Storage, x: Storage): void;

  // ---- reductions ----
  /** Sum over the axes where outShape (same rank as shape) is 1 and shape is not. */
  sumTo(x: Storage, shape: readonly number[], out: Storage, outShape: readonly number[]): void;
  /** Softmax / log-softmax along the last axis of [rows, cols]. */
  softmax(x: Storage, y: Storage, rows: number, cols: number, log: boolean): void;
  /** Backward of softmax from its output y: dx = y*(dy - sum(dy*y)); log: dx = dy - exp(y)*sum(dy). */
  softmaxBackward(dy: Storage, y: Storage, dx: Storage, rows: number, cols: number, log: boolean): void;
  /** out[r] = index of the first maximum of row r of x[rows, cols], as a float. */
  argmax(x: Storage, out: Storage, rows: number, cols: number): void;
  /**
   * Mean cross-entropy of logits[N,C] against integer targets, with label smoothing eps:
   * loss_i = -(1-eps)*logp[i,t_i] - eps/C * sum_c logp[i,c]. Writes probs[N,C] (softmax) for the
   * backward and the mean loss into loss[0]. Targets must be in [0, C).
   */
  softmaxCrossEntropy(logits: Storage, targets: Int32Array, probs: Storage, loss: Storage, N: number, C: number, labelSmoothing: number): void;
  /** dlogits[N,C] = (probs - (1-eps)*onehot(t) - eps/C) * dloss[0] / N. */
  softmaxCrossEntropyBackward(probs: Storage, targets: Int32Array, dloss: Storage, dlogits: Storage, N: number, C: number, labelSmoothing: number): void;

  // ---- layout ----
  /**
   * He et al.'s option-A shortcut: y[N, C+before+after, ceil(H/s), ceil(W/s)] takes every s-th
   * pixel of x[N,C,H,W] into channels before..before+C-1 (y must be zero-filled). backward: the
   * adjoint, x from y (x must be zero-filled).
   */
  subsamplePadChannels(
    x: Storage,
    y: Storage,
    N: number,
    C: number,
    H: number,
    W: number,
    stride: number,
    padBefore: number,
    padAfter: number,
    backward: boolean,
  ): void;

  // ---- optimizer updates (in place) ----
  // Optional: a backend without them (ref, and backends built on it) gets the host loops of
  // backend/ref/optim.ts, which only the optimizers and EMA import, so an inference bundle leaves them
  // out. Callers go through that module's sgdStep/movingAverage/adamStep, never these methods.
  /** PyTorch SGD: g = grad + wd*p; buf = momentum*buf + (1-dampening)*g (buf = g when first); g = nesterov ? g + momentum*buf : buf; p -= lr*g. */
  sgdStep?(
    param: Storage,
    grad: Storage,
    buf: Storage | null,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
    first: boolean,
  ): void;
  /** avg = decay*avg + (1-decay)*x (a model's weight average, train/ema.ts). */
  movingAverage?(avg: Storage, x: Storage, decay: number): void;
  /** PyTorch Adam/AdamW step (step counts from 1). decoupled=true is AdamW. */
  adamStep?(
    param: Storage,
    grad: Storage,
    m: Storage,
    v: Storage,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
    decoupled: boolean,
  ): void;
}
