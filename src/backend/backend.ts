// The Backend interface: storage plus compute kernels over it.
//
// Every buffer a backend hands out is a Float32Array. The ref backend allocates ordinary arrays;
// the wasm backend returns views into its shared WebAssembly.Memory (shared memory never
// detaches on grow, so views stay valid). Because both speak Float32Array, a backend may
// override only the kernels it accelerates and inherit the rest from RefBackend.
//
// Conventions: tensors are contiguous row-major; images are NCHW; conv weights are
// [K, C/groups, R, S] (PyTorch's OIHW). Output buffers are fully overwritten unless a kernel
// says it accumulates. Kernels never allocate tensors and never import tensor/.

export interface Conv2dParams {
  N: number; C: number; H: number; W: number; // input
  K: number; R: number; S: number; // out channels, kernel height, kernel width
  strideH: number; strideW: number;
  padH: number; padW: number;
  dilH: number; dilW: number;
  groups: number;
  OH: number; OW: number; // output spatial size
}

export interface Pool2dParams {
  N: number; C: number; H: number; W: number;
  kH: number; kW: number;
  sH: number; sW: number;
  pH: number; pW: number;
  dH: number; dW: number; // dilation (max pool only; avg pool uses 1)
  OH: number; OW: number;
  countIncludePad: boolean; // avg pool only
}

export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'abs' | 'relu' | 'sigmoid' | 'tanh';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min';

export interface Backend {
  readonly name: string;

  // ---- storage ----
  /** A zero-filled buffer of n floats. */
  alloc(n: number): Float32Array;
  /** Return a buffer from alloc() to the backend. Using it afterwards is undefined. */
  free(buf: Float32Array): void;
  /** Floats currently allocated (for leak tests). */
  allocatedFloats(): number;

  // ---- dense linear algebra ----
  /**
   * C[M,N] = op(A) @ op(B) (+ C when accumulate). Row-major. op(A) is [M,K]: A is stored [M,K],
   * or [K,M] when transA. op(B) is [K,N]: B is stored [K,N], or [N,K] when transB.
   */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number,
       A: Float32Array, B: Float32Array, C: Float32Array, accumulate: boolean): void;

  // ---- convolution (cross-correlation, as PyTorch) ----
  /** y[N,K,OH,OW] = conv(x[N,C,H,W], w[K,C/g,R,S]) + bias[K] (bias may be null). */
  conv2d(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array, p: Conv2dParams): void;
  /**
   * Inference: y = act(conv(x, w) + bias + residual), act = ReLU when `relu`; residual (shape of y)
   * may be null. `constWeights` promises w and bias never change while allocated, so a backend may
   * keep transformed copies of them (freed with w).
   */
  conv2dFused(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array, p: Conv2dParams,
              relu: boolean, residual: Float32Array | null, constWeights: boolean): void;
  /** dx[N,C,H,W] (overwritten) from dy[N,K,OH,OW] and w. */
  conv2dBackwardData(dy: Float32Array, w: Float32Array, dx: Float32Array, p: Conv2dParams): void;
  /** dw[K,C/g,R,S] (overwritten) from x and dy. */
  conv2dBackwardFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, p: Conv2dParams): void;

  // ---- batch norm over [N,C,HW]; gamma/beta may be null (affine=false) ----
  /** Training mode: batch statistics. Writes y, saveMean[C], saveInvStd[C], and biased batch var[C] into batchVar. */
  batchNormTrain(x: Float32Array, gamma: Float32Array | null, beta: Float32Array | null, y: Float32Array,
                 saveMean: Float32Array, saveInvStd: Float32Array, batchVar: Float32Array,
                 N: number, C: number, HW: number, eps: number): void;
  /** Eval mode: y = (x - mean) / sqrt(var + eps) * gamma + beta. */
  batchNormEval(x: Float32Array, gamma: Float32Array | null, beta: Float32Array | null,
                mean: Float32Array, variance: Float32Array, y: Float32Array,
                N: number, C: number, HW: number, eps: number): void;
  /** Backward of batchNormTrain. dgamma/dbeta (may be null) are overwritten. */
  batchNormTrainBackward(dy: Float32Array, x: Float32Array, gamma: Float32Array | null,
                         saveMean: Float32Array, saveInvStd: Float32Array,
                         dx: Float32Array, dgamma: Float32Array | null, dbeta: Float32Array | null,
                         N: number, C: number, HW: number): void;

  // ---- pooling ----
  maxPool2d(x: Float32Array, y: Float32Array, p: Pool2dParams): void;
  /** dx (overwritten): each dy goes to the first maximum of its window (PyTorch's tie rule). */
  maxPool2dBackward(x: Float32Array, dy: Float32Array, dx: Float32Array, p: Pool2dParams): void;
  avgPool2d(x: Float32Array, y: Float32Array, p: Pool2dParams): void;
  avgPool2dBackward(dy: Float32Array, dx: Float32Array, p: Pool2dParams): void;
  /** PyTorch's adaptive windows: start = floor(i*H/OH), end = ceil((i+1)*H/OH). */
  adaptiveAvgPool2d(x: Float32Array, y: Float32Array, N: number, C: number, H: number, W: number, OH: number, OW: number): void;
  adaptiveAvgPool2dBackward(dy: Float32Array, dx: Float32Array, N: number, C: number, H: number, W: number, OH: number, OW: number): void;

  // ---- elementwise ----
  unary(op: UnaryOp, x: Float32Array, y: Float32Array): void;
  /** out = a op b with NumPy broadcasting; shapes are given padded to the same rank. */
  binary(op: BinaryOp, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[],
         out: Float32Array, outShape: readonly number[]): void;
  /** y = x * alpha + beta. */
  affine(x: Float32Array, y: Float32Array, alpha: number, beta: number): void;
  /** dx = 0 where y <= 0 else dy (PyTorch's threshold_backward: a NaN output passes its gradient on). */
  reluBackward(dy: Float32Array, y: Float32Array, dx: Float32Array): void;
  /** y += x (gradient accumulation, residual add in place). */
  addInPlace(y: Float32Array, x: Float32Array): void;

  // ---- reductions ----
  /** Sum over the axes where outShape (same rank as shape) is 1 and shape is not. */
  sumTo(x: Float32Array, shape: readonly number[], out: Float32Array, outShape: readonly number[]): void;
  /** Softmax / log-softmax along the last axis of [rows, cols]. */
  softmax(x: Float32Array, y: Float32Array, rows: number, cols: number, log: boolean): void;
  /**
   * Mean cross-entropy of logits[N,C] against integer targets, with label smoothing eps:
   * loss_i = -(1-eps)*logp[i,t_i] - eps/C * sum_c logp[i,c]. Writes probs[N,C] (softmax) for the
   * backward and returns the mean loss. Targets must be in [0, C).
   */
  softmaxCrossEntropy(logits: Float32Array, targets: Int32Array, probs: Float32Array,
                      N: number, C: number, labelSmoothing: number): number;

  // ---- optimizer updates (in place) ----
  /** PyTorch SGD: g = grad + wd*p; buf = momentum*buf + (1-dampening)*g (buf = g when first); g = nesterov ? g + momentum*buf : buf; p -= lr*g. */
  sgdStep(param: Float32Array, grad: Float32Array, buf: Float32Array | null, lr: number, momentum: number,
          dampening: number, weightDecay: number, nesterov: boolean, first: boolean): void;
  /** PyTorch Adam/AdamW step (step counts from 1). decoupled=true is AdamW. */
  adamStep(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, lr: number,
           beta1: number, beta2: number, eps: number, weightDecay: number, step: number, decoupled: boolean): void;
}
